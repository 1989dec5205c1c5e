/**
 * OpenSSH known_hosts, read the way `ssh -o StrictHostKeyChecking=yes` reads it (sshd(8), "SSH_KNOWN_HOSTS
 * FILE FORMAT"): plain and hashed host patterns, wildcards and negation, `@revoked` keys. `@cert-authority`
 * lines are ignored because the bot never accepts host certificates.
 */

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../errors.js';

export interface KnownHostKey {
  type: string;
  /** The raw public key blob, as the server sends it during key exchange. */
  key: Buffer;
}

export interface KnownHostsEntry extends KnownHostKey {
  marker: 'revoked' | undefined;
  matches(hostName: string): boolean;
}

export interface KnownHostKeys {
  /** Keys trusted for the host, revoked ones removed. */
  trusted: KnownHostKey[];
  /** Keys listed as `@revoked` for the host. */
  revoked: KnownHostKey[];
}

const HASHED_PREFIX = '|1|';

/** The name OpenSSH looks up: `host` for port 22, `[host]:port` otherwise, lower-cased. */
export function knownHostsName(host: string, port: number): string {
  const lower = host.toLowerCase();
  return port === 22 ? lower : `[${lower}]:${port}`;
}

export function parseKnownHosts(knownHosts: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  for (const rawLine of knownHosts.split(/\r?\n/)) {
    const entry = parseLine(rawLine.trim());
    if (entry) entries.push(entry);
  }
  return entries;
}

/** Both trusted and revoked keys for host:port; a key that is also `@revoked` is never trusted. */
export function lookupHostKeys(knownHosts: string, host: string, port: number): KnownHostKeys {
  const name = knownHostsName(host, port);
  const forHost = parseKnownHosts(knownHosts).filter((entry) => entry.matches(name));
  const revoked = forHost.filter((entry) => entry.marker === 'revoked').map(toKey);
  const trusted = forHost
    .filter((entry) => entry.marker === undefined)
    .filter((entry) => !revoked.some((bad) => bad.key.equals(entry.key)))
    .map(toKey);
  return { trusted, revoked };
}

export function findHostKeys(knownHosts: string, host: string, port: number): KnownHostKey[] {
  return lookupHostKeys(knownHosts, host, port).trusted;
}

/** `[host]:port type base64` (`host type base64` for port 22) from a `type base64 [comment]` public key line. */
export function formatKnownHostsLine(host: string, port: number, publicKeyLine: string): string {
  const [type, base64] = publicKeyLine.trim().split(/\s+/);
  if (!type || !base64 || keyBlobType(Buffer.from(base64, 'base64')) !== type) {
    throw new ConfigError([`not an OpenSSH public key line (expected "type base64 [comment]") for ${host}`]);
  }
  const name = port === 22 ? host : `[${host}]:${port}`;
  return `${name} ${type} ${base64}`;
}

/** The fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64 of the key blob's SHA-256. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type written inside an SSH public key blob (a uint32 length and the name), if readable. */
export function keyBlobType(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined;
  const length = keyBlob.readUInt32BE(0);
  if (length === 0 || length > 64 || keyBlob.length < 4 + length) return undefined;
  return keyBlob.subarray(4, 4 + length).toString('latin1');
}

function parseLine(line: string): KnownHostsEntry | undefined {
  if (line === '' || line.startsWith('#')) return undefined;
  const fields = line.split(/\s+/);
  let marker: KnownHostsEntry['marker'];
  if (fields[0]?.startsWith('@')) {
    // Host certificates are not trusted by the bot, so a CA line grants nothing; unknown markers likewise.
    if (fields[0] !== '@revoked') return undefined;
    marker = 'revoked';
    fields.shift();
  }
  const [patterns, type, base64] = fields;
  if (!patterns || !type || !base64) return undefined;
  const key = Buffer.from(base64, 'base64');
  // OpenSSH skips lines whose key does not parse; a blob naming another type is such a line.
  if (keyBlobType(key) !== type) return undefined;
  const matches = patterns.startsWith(HASHED_PREFIX) ? hashedMatcher(patterns) : patternListMatcher(patterns);
  if (!matches) return undefined;
  return { marker, type, key, matches };
}

function hashedMatcher(field: string): ((name: string) => boolean) | undefined {
  const [salt64, hash64] = field.slice(HASHED_PREFIX.length).split('|');
  if (!salt64 || !hash64) return undefined;
  const salt = Buffer.from(salt64, 'base64');
  const expected = Buffer.from(hash64, 'base64');
  if (expected.length !== 20) return undefined;
  return (name) => timingSafeEqual(createHmac('sha1', salt).update(name).digest(), expected);
}

/** A comma-separated list matches when some pattern matches and no negated (`!`) pattern does. */
function patternListMatcher(field: string): (name: string) => boolean {
  const positive: RegExp[] = [];
  const negative: RegExp[] = [];
  for (const pattern of field.split(',')) {
    if (pattern === '') continue;
    if (pattern.startsWith('!')) negative.push(globToRegExp(pattern.slice(1)));
    else positive.push(globToRegExp(pattern));
  }
  return (name) => !negative.some((re) => re.test(name)) && positive.some((re) => re.test(name));
}

function globToRegExp(glob: string): RegExp {
  const source = [...glob.toLowerCase()]
    .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}

function toKey(entry: KnownHostsEntry): KnownHostKey {
  return { type: entry.type, key: entry.key };
}
