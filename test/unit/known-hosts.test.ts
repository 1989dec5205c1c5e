import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { generateHostKey } from '../../lab/ssh-keys.js';
import { ConfigError } from '../../src/errors.js';
import {
  findHostKeys,
  fingerprintSha256,
  formatKnownHostsLine,
  lookupHostKeys,
} from '../../src/ssh/known-hosts.js';

const run = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), 'known-hosts-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function newKey(): { line: string; type: string; blob: Buffer } {
  // Through the lab's generator: ssh2's own yields a malformed key 1 time in 256.
  const line = generateHostKey('test').publicKey;
  const [type, base64] = line.split(' ');
  return { line, type: type ?? '', blob: Buffer.from(base64 ?? '', 'base64') };
}

function keyField(key: { line: string }): string {
  return key.line.split(' ').slice(0, 2).join(' ');
}

const a = newKey();
const b = newKey();
const c = newKey();

describe('findHostKeys with plain entries', () => {
  it('uses "host" for port 22 and "[host]:port" for any other port', () => {
    const text = `10.0.0.1 ${keyField(a)}\n[10.0.0.1]:2222 ${keyField(b)}\n`;
    expect(findHostKeys(text, '10.0.0.1', 22)).toEqual([{ type: 'ssh-ed25519', key: a.blob }]);
    expect(findHostKeys(text, '10.0.0.1', 2222)).toEqual([{ type: 'ssh-ed25519', key: b.blob }]);
    expect(findHostKeys(text, '10.0.0.1', 2200)).toEqual([]);
    expect(findHostKeys(text, '10.0.0.2', 22)).toEqual([]);
  });

  it('matches every host of a comma-separated list, case-insensitively', () => {
    const text = `xen1.example.com,10.0.0.1,[10.0.0.9]:2200 ${keyField(a)}`;
    for (const [host, port] of [
      ['XEN1.example.COM', 22],
      ['10.0.0.1', 22],
      ['10.0.0.9', 2200],
    ] as const) {
      expect(findHostKeys(text, host, port).map((k) => k.key)).toEqual([a.blob]);
    }
    expect(findHostKeys(text, '10.0.0.9', 22)).toEqual([]);
  });

  it('supports wildcards and negated patterns', () => {
    const text = `*.pool.example.com,!bad.pool.example.com ${keyField(a)}\n10.0.0.? ${keyField(b)}`;
    expect(findHostKeys(text, 'xen3.pool.example.com', 22).map((k) => k.key)).toEqual([a.blob]);
    expect(findHostKeys(text, 'bad.pool.example.com', 22)).toEqual([]);
    expect(findHostKeys(text, 'pool.example.com', 22)).toEqual([]);
    expect(findHostKeys(text, '10.0.0.7', 22).map((k) => k.key)).toEqual([b.blob]);
    expect(findHostKeys(text, '10.0.0.17', 22)).toEqual([]);
  });

  it('lists every key a host has, of any type', () => {
    const text = `h1 ${keyField(a)}\nh1 ${keyField(b)}\nh2 ${keyField(c)}`;
    expect(findHostKeys(text, 'h1', 22).map((k) => k.key)).toEqual([a.blob, b.blob]);
  });

  it('skips comments, blank lines, malformed lines and keys whose blob names another type', () => {
    const [, base64] = a.line.split(' ');
    const text = [
      '# a comment',
      '',
      '   ',
      'h1',
      'h1 ssh-ed25519',
      `h1 ssh-rsa ${base64}`,
      'h1 ssh-ed25519 bm90IGEga2V5',
      `  h1 ${keyField(b)}   # trailing comment`,
    ].join('\n');
    expect(findHostKeys(text, 'h1', 22).map((k) => k.key)).toEqual([b.blob]);
  });
});

describe('markers', () => {
  it('never trusts a key marked @revoked, even when another line lists it', () => {
    const text = `h1 ${keyField(a)}\nh1 ${keyField(b)}\n@revoked * ${keyField(a)}`;
    const found = lookupHostKeys(text, 'h1', 22);
    expect(found.trusted.map((k) => k.key)).toEqual([b.blob]);
    expect(found.revoked.map((k) => k.key)).toEqual([a.blob]);
  });

  it('ignores @cert-authority lines and unknown markers', () => {
    const text = `@cert-authority h1 ${keyField(a)}\n@future h1 ${keyField(b)}`;
    expect(lookupHostKeys(text, 'h1', 22)).toEqual({ trusted: [], revoked: [] });
  });
});

describe('hashed entries', () => {
  it('finds hosts in a file hashed by ssh-keygen -H, for port 22 and other ports', async () => {
    const file = path.join(dir, 'hashed_known_hosts');
    writeFileSync(file, `xen1.example.com ${keyField(a)}\n[10.1.2.3]:2222 ${keyField(b)}\n`);
    await run('ssh-keygen', ['-H', '-f', file]);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('xen1');
    expect(text).toMatch(/^\|1\|/);

    expect(findHostKeys(text, 'xen1.example.com', 22).map((k) => k.key)).toEqual([a.blob]);
    expect(findHostKeys(text, '10.1.2.3', 2222).map((k) => k.key)).toEqual([b.blob]);
    expect(findHostKeys(text, '10.1.2.3', 22)).toEqual([]);
    expect(findHostKeys(text, 'xen2.example.com', 22)).toEqual([]);
  });

  it('skips hashed entries that are not well formed', () => {
    const text = `|1|bm90IGEgc2FsdA== ${keyField(a)}\n|1|c2FsdA==|c2hvcnQ= ${keyField(b)}`;
    expect(findHostKeys(text, 'anything', 22)).toEqual([]);
  });
});

describe('formatKnownHostsLine', () => {
  it('writes lines ssh-keygen finds for the host and port', async () => {
    const onPort22 = formatKnownHostsLine('10.1.2.3', 22, a.line);
    const onOtherPort = formatKnownHostsLine('10.1.2.4', 2222, b.line);
    expect(onPort22).toBe(`10.1.2.3 ${keyField(a)}`);
    expect(onOtherPort).toBe(`[10.1.2.4]:2222 ${keyField(b)}`);

    const file = path.join(dir, 'formatted_known_hosts');
    writeFileSync(file, `${onPort22}\n${onOtherPort}\n`);
    const found = await run('ssh-keygen', ['-F', '[10.1.2.4]:2222', '-f', file]);
    expect(found.stdout).toContain(keyField(b));
    expect(findHostKeys(readFileSync(file, 'utf8'), '10.1.2.3', 22).map((k) => k.key)).toEqual([a.blob]);
  });

  it('rejects text that is not a public key line', () => {
    expect(() => formatKnownHostsLine('h1', 22, 'ssh-ed25519')).toThrow(ConfigError);
    expect(() => formatKnownHostsLine('h1', 22, 'ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIA==')).toThrow(ConfigError);
  });
});

describe('fingerprintSha256', () => {
  it('prints the fingerprint exactly as ssh-keygen -l does', async () => {
    const file = path.join(dir, 'key.pub');
    writeFileSync(file, `${c.line}\n`);
    const { stdout } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', file]);
    expect(stdout.split(' ')[1]).toBe(fingerprintSha256(c.blob));
  });
});
