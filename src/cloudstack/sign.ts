/**
 * CloudStack request signing, exactly as the management server verifies it
 * (`ApiServer.verifyRequest`, see protocols.md B2). Shared by the client and the lab server.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const UNRESERVED = /[A-Za-z0-9.\-*_]/;
// Java's String.getBytes("UTF-8") turns an unpaired surrogate into '?', Node into U+FFFD.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Java `URLEncoder.encode(value, "UTF-8")` followed by `replaceAll("\\+", "%20")`: only
 * `A-Za-z0-9.-*_` stay as they are; everything else (including `!'()~`, which
 * `encodeURIComponent` keeps) becomes `%XX` per UTF-8 byte, uppercase hex.
 */
export function javaUrlEncode(value: string): string {
  const bytes = Buffer.from(value.replace(LONE_SURROGATE, '?'), 'utf8');
  let out = '';
  for (const byte of bytes) {
    const char = String.fromCharCode(byte);
    out +=
      byte < 0x80 && UNRESERVED.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function isSignatureName(name: string): boolean {
  return name.toLowerCase() === 'signature';
}

/**
 * The string CloudStack signs: every parameter but `signature`, names sorted case-sensitively by
 * UTF-16 code unit (Java `Collections.sort`, JS default sort) and not encoded, values Java-URL-encoded,
 * joined with `&`, then the whole string lowercased.
 */
export function canonicalString(params: Readonly<Record<string, string>>): string {
  return Object.keys(params)
    .filter((name) => !isSignatureName(name))
    .sort()
    .map((name) => `${name}=${javaUrlEncode(params[name] ?? '')}`)
    .join('&')
    .toLowerCase();
}

/** HMAC-SHA1 of the canonical string with the secret key, standard Base64 with padding. */
export function signParams(params: Readonly<Record<string, string>>, secretKey: string): string {
  return createHmac('sha1', secretKey).update(canonicalString(params), 'utf8').digest('base64');
}

/** True when `params` carries a `signature` (any case) matching the other params; constant-time compare. */
export function verifySignature(params: Readonly<Record<string, string>>, secretKey: string): boolean {
  const signatureName = Object.keys(params).find(isSignatureName);
  const received = signatureName === undefined ? undefined : params[signatureName];
  if (received === undefined) return false;
  const expected = Buffer.from(signParams(params, secretKey), 'utf8');
  const actual = Buffer.from(received, 'utf8');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
