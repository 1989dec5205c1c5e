import { describe, expect, it } from 'vitest';
import { canonicalString, javaUrlEncode, signParams, verifySignature } from '../../src/cloudstack/sign.js';

// protocols.md B3: V1-V8 published (CloudStack docs, exoscale/cs tests), V9-V10 computed with Java semantics.
const vectors: Array<{ name: string; secret: string; params: Record<string, string>; signature: string }> = [
  {
    name: 'V1 CloudStack docs',
    secret: 'VDaACYb0LV9eNjTetIOElcVQkvJck_J_QljX_FcHRj87ZKiy0z0ty0ZsYBkoXkY9b7eq1EhwJaw7FF3akA3KBQ',
    params: {
      apikey: 'plgWJfZK4gyS3mOMTVmjUVg-X-jlWlnfaUJ9GAbBbf9EdM-kAYMmAiLqzzq1ElZLYq_u38zCm0bewzGUdP66mg',
      command: 'listUsers',
      response: 'json',
    },
    signature: 'TTpdDq/7j/J58XCRHomKoQXEQds=',
  },
  {
    name: 'V2 listall',
    secret: 'bar',
    params: { apiKey: 'foo', command: 'listVirtualMachines', listall: 'true', response: 'json' },
    signature: 'B0d6hBsZTcFVCiioSxzwKA9Pke8=',
  },
  {
    name: 'V3 name casing',
    secret: 'bar',
    params: {
      apiKey: 'foo',
      command: 'listVirtualMachines',
      page: '1',
      pageSize: '10',
      response: 'json',
      temPlateidd: '4',
      templateId: '3',
      zoneId: '2',
    },
    signature: 'mMS7XALuGkCXk7kj5SywySku0Z0=',
  },
  {
    name: 'V4 UTF-8 value',
    secret: 'bar',
    params: {
      apiKey: 'foo',
      command: 'listVirtualMachines',
      listall: '1',
      response: 'json',
      unicode_param: 'éèààû',
    },
    signature: 'gABU/KFJKD3FLAgKDuxQoryu4sA=',
  },
  {
    name: 'V5 bracketed names and comma',
    secret: 'bar',
    params: {
      apiKey: 'foo',
      'bar[0].baz': 'blah',
      'bar[0].foo': '1000',
      bytes_param: 'blah',
      command: 'listVirtualMachines',
      foo: 'foo,bar',
      response: 'json',
    },
    signature: 'ImJ/5F0P2RDL7yn4LdLnGcEx5WE=',
  },
  {
    name: 'V6 map parameters',
    secret: 'bar',
    params: {
      apiKey: 'foo',
      command: 'scaleVirtualMachine',
      'details[0].cpunumber': '1000',
      'details[0].memory': '640k',
      id: 'a',
      response: 'json',
    },
    signature: 'ZNl66z3gFhnsx2Eo3vvCIM0kAgI=',
  },
  {
    name: 'V7 empty values',
    secret: 'bar',
    params: { apiKey: 'foo', command: 'createNetwork', display_text: '', name: '', response: 'json' },
    signature: 'CistTEiPt/4Rv1v4qSyILvPbhmg=',
  },
  {
    name: 'V8 POST params',
    secret: 'bar',
    params: { apiKey: 'foo', blah: 'brah', command: 'listVirtualMachines', response: 'json' },
    signature: '58VvLSaVUqHnG9DhXNOAiDFwBoA=',
  },
  {
    name: 'V9 signatureVersion 3',
    secret: 'bar',
    params: {
      apiKey: 'foo',
      command: 'listClusters',
      expires: '2030-01-01T00:00:00+0000',
      response: 'json',
      signatureVersion: '3',
    },
    signature: 'R8S5XFkV5ngQ6SweUn/cB+R7HMM=',
  },
  {
    name: 'V10 characters encodeURIComponent keeps',
    secret: 'bar',
    params: {
      apiKey: 'foo',
      command: 'updateCluster',
      id: 'a1b2',
      managedstate: 'Unmanaged',
      name: "it's (a) test~!",
      response: 'json',
    },
    signature: 'b5eY0NPPaI8FgUxoFm+WoUjOohA=',
  },
];

describe('signParams', () => {
  for (const vector of vectors) {
    it(`matches ${vector.name}`, () => {
      expect(signParams(vector.params, vector.secret)).toBe(vector.signature);
    });
  }

  it('does not depend on the order parameters were given in', () => {
    const v3 = vectors[2];
    if (v3 === undefined) throw new Error('vector V3 missing');
    const reversed = Object.fromEntries(Object.entries(v3.params).reverse());
    expect(signParams(reversed, v3.secret)).toBe(v3.signature);
  });

  it('ignores a signature parameter whatever its case', () => {
    const v2 = vectors[1];
    if (v2 === undefined) throw new Error('vector V2 missing');
    expect(signParams({ ...v2.params, Signature: 'x', signature: 'y' }, v2.secret)).toBe(v2.signature);
  });
});

describe('canonicalString', () => {
  it('builds the V1 string to sign', () => {
    expect(canonicalString(vectors[0]?.params ?? {})).toBe(
      'apikey=plgwjfzk4gys3momtvmjuvg-x-jlwlnfauj9gabbbf9edm-kaymmailqzzq1elzlyq_u38zcm0bewzgudp66mg&command=listusers&response=json',
    );
  });

  it('sorts names case-sensitively (uppercase first) and does not encode them', () => {
    expect(canonicalString({ b: '1', B: '2', 'a[0].x': '3', signature: 'zz' })).toBe('b=2&a[0].x=3&b=1');
  });

  it('lowercases percent-escapes of UTF-8 values (V4)', () => {
    expect(canonicalString({ u: 'éèààû' })).toBe('u=%c3%a9%c3%a8%c3%a0%c3%a0%c3%bb');
  });
});

describe('javaUrlEncode', () => {
  it("encodes the characters encodeURIComponent leaves alone: ! ' ( ) ~", () => {
    expect(javaUrlEncode("!'()~")).toBe('%21%27%28%29%7E');
  });

  it('keeps only A-Z a-z 0-9 . - * _', () => {
    expect(javaUrlEncode('AZaz09.-*_')).toBe('AZaz09.-*_');
  });

  it('encodes a space as %20, never +', () => {
    expect(javaUrlEncode('a b')).toBe('a%20b');
  });

  it('encodes + so it cannot decode to a space', () => {
    expect(javaUrlEncode('a+b=c/d')).toBe('a%2Bb%3Dc%2Fd');
  });

  it('encodes UTF-8 bytes in uppercase hex, including astral characters', () => {
    expect(javaUrlEncode('é€😀')).toBe('%C3%A9%E2%82%AC%F0%9F%98%80');
  });

  it("turns an unpaired surrogate into '?' as Java's UTF-8 encoder does", () => {
    expect(javaUrlEncode('a\uD800b')).toBe('a%3Fb');
  });
});

describe('verifySignature', () => {
  const v10 = vectors[9];
  if (v10 === undefined) throw new Error('vector V10 missing');

  it('accepts the V10 parameters with their signature', () => {
    expect(verifySignature({ ...v10.params, signature: v10.signature }, v10.secret)).toBe(true);
  });

  it('rejects a wrong secret, a changed value, and a missing signature', () => {
    expect(verifySignature({ ...v10.params, signature: v10.signature }, 'baz')).toBe(false);
    expect(verifySignature({ ...v10.params, id: 'a1b3', signature: v10.signature }, v10.secret)).toBe(false);
    expect(verifySignature(v10.params, v10.secret)).toBe(false);
  });

  it("rejects the signature Python quote(safe='*') gives (it leaves ~ unencoded)", () => {
    expect(verifySignature({ ...v10.params, signature: '+w7tRcaxtEZ+zWKowSGAfVfTmS0=' }, v10.secret)).toBe(
      false,
    );
  });
});
