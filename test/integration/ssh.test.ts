import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OperationLog } from '../../lab/operation-log.js';
import { generateHostKey, generateLabSshMaterial, type LabSshMaterial } from '../../lab/ssh-keys.js';
import { type LabSshServer, startLabSshServer } from '../../lab/ssh-server.js';
import {
  SshAuthError,
  SshCommandError,
  SshConnectError,
  SshHostKeyChangedError,
  SshHostKeyUnknownError,
} from '../../src/errors.js';
import { probeSsh, runSshCommand, type SshTarget } from '../../src/ssh/client.js';
import { fingerprintSha256 } from '../../src/ssh/known-hosts.js';

const run = promisify(execFile);
const HOSTS = [
  { name: 'xen-31', address: '127.0.0.31' },
  { name: 'xen-32', address: '127.0.0.32' },
];

let dir: string;
let material: LabSshMaterial;
let port: number;
const log = new OperationLog();
const servers = new Map<string, LabSshServer>();
const bootIds = new Map<string, string>();
let failBootIdRead = false;

/** A port free on every lab address, so one known_hosts written up front fits all hosts. */
async function freePortOnAll(addresses: string[]): Promise<number> {
  for (;;) {
    const candidate = await new Promise<number>((resolve, reject) => {
      const probe = net.createServer().once('error', reject);
      probe.listen(0, addresses[0], () => {
        const bound = probe.address() as net.AddressInfo;
        probe.close(() => resolve(bound.port));
      });
    });
    const allFree = await Promise.all(
      addresses.map(
        (address) =>
          new Promise<boolean>((resolve) => {
            const probe = net.createServer().once('error', () => resolve(false));
            probe.listen(candidate, address, () => probe.close(() => resolve(true)));
          }),
      ),
    );
    if (allFree.every(Boolean)) return candidate;
  }
}

function server(name: string): LabSshServer {
  const found = servers.get(name);
  if (!found) throw new Error(`no lab server ${name}`);
  return found;
}

function target(name: string, overrides: Partial<SshTarget> = {}): SshTarget {
  const host = HOSTS.find((h) => h.name === name);
  if (!host) throw new Error(`no lab host ${name}`);
  return {
    host: host.address,
    port,
    username: 'root',
    privateKey: material.clientPrivateKey,
    knownHosts: readFileSync(material.knownHostsFile, 'utf8'),
    timeoutMs: 5_000,
    ...overrides,
  };
}

function publicKeyBlob(publicKeyLine: string): Buffer {
  return Buffer.from(publicKeyLine.split(' ')[1] ?? '', 'base64');
}

function opsSince(seq: number, kind: string, host: string) {
  return log.ofKind(kind).filter((op) => op.seq > seq && op.host === host);
}

function lastSeq(): number {
  return log.entries().length;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'lab-ssh-test-'));
  port = await freePortOnAll(HOSTS.map((h) => h.address));
  material = generateLabSshMaterial(dir, HOSTS, port);
  for (const host of HOSTS) {
    bootIds.set(host.name, randomUUID());
    const hostKey = material.hostKeys.get(host.name);
    if (!hostKey) throw new Error(`no host key for ${host.name}`);
    const started = await startLabSshServer({
      address: host.address,
      port,
      hostName: host.name,
      hostKey: hostKey.privateKey,
      authorizedKey: material.clientPublicKey,
      username: 'root',
      bootId: () => bootIds.get(host.name) ?? '',
      uptimeSeconds: () => 3 * 86_400 + 4 * 3_600 + 5 * 60,
      onExec: (command) => {
        if (command === 'pre-empty-hook') return { exitCode: 3, stdout: 'draining\n', stderr: 'not yet\n' };
        if (failBootIdRead && command.includes('boot_id')) {
          return { exitCode: 1, stdout: '', stderr: 'cat: boot_id: Input/output error\n' };
        }
        return undefined;
      },
      log,
    });
    servers.set(host.name, started);
  }
});

afterAll(async () => {
  await Promise.all([...servers.values()].map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  failBootIdRead = false;
  for (const s of servers.values()) await s.setState('up');
});

describe('lab SSH material', () => {
  it('writes private keys readable only by the owner and a known_hosts line per host', () => {
    const lines = readFileSync(material.knownHostsFile, 'utf8').trim().split('\n');
    expect(lines).toEqual(
      HOSTS.map(
        (h) =>
          `[${h.address}]:${port} ${material.hostKeys.get(h.name)?.publicKey.split(' ').slice(0, 2).join(' ')}`,
      ),
    );
    expect(readFileSync(`${material.clientKeyFile}.pub`, 'utf8').trim()).toBe(material.clientPublicKey);
    expect(readFileSync(material.clientKeyFile, 'utf8')).toBe(material.clientPrivateKey);
  });
});

describe('probeSsh against the lab', () => {
  it('reads the boot id with the right key, and the host saw the login and the command', async () => {
    const before = lastSeq();
    const { bootId } = await probeSsh(target('xen-31'));
    expect(bootId).toBe(bootIds.get('xen-31'));
    expect(opsSince(before, 'ssh.auth', 'xen-31').map((op) => op.detail?.ok)).toEqual([true]);
    expect(opsSince(before, 'ssh.exec', 'xen-31').map((op) => op.detail)).toEqual([
      { command: 'cat /proc/sys/kernel/random/boot_id', exitCode: 0 },
    ]);
  });

  it('refuses a host missing from known_hosts, naming host:port and the offered fingerprint', async () => {
    const before = lastSeq();
    const error = await probeSsh(target('xen-31', { knownHosts: '' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SshHostKeyUnknownError);
    const offered = fingerprintSha256(publicKeyBlob(material.hostKeys.get('xen-31')?.publicKey ?? ''));
    expect((error as Error).message).toContain(`127.0.0.31:${port}`);
    expect((error as Error).message).toContain(offered);
    expect((error as Error).message).toContain('known_hosts');
    expect(opsSince(before, 'ssh.auth', 'xen-31')).toEqual([]);
  });

  it('refuses a host whose key changed (reinstalled) and accepts it again once the key is back', async () => {
    const original = material.hostKeys.get('xen-32');
    if (!original) throw new Error('no host key');
    const replacement = generateHostKey();
    await server('xen-32').replaceHostKey(replacement.privateKey);
    try {
      const before = lastSeq();
      const error = await probeSsh(target('xen-32')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SshHostKeyChangedError);
      expect((error as Error).message).toContain(`127.0.0.32:${port} changed`);
      expect((error as Error).message).toContain(fingerprintSha256(publicKeyBlob(replacement.publicKey)));
      expect(opsSince(before, 'ssh.auth', 'xen-32')).toEqual([]);
    } finally {
      await server('xen-32').replaceHostKey(original.privateKey);
    }
    await expect(probeSsh(target('xen-32'))).resolves.toEqual({ bootId: bootIds.get('xen-32') });
  });

  it('refuses a host key marked @revoked even though another line trusts it', async () => {
    const hostKey = material.hostKeys.get('xen-31')?.publicKey ?? '';
    const knownHosts = `${readFileSync(material.knownHostsFile, 'utf8')}@revoked * ${hostKey}\n`;
    const error = await probeSsh(target('xen-31', { knownHosts })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SshHostKeyChangedError);
    expect((error as Error).message).toContain('@revoked');
  });

  it('asks a host with several key types for the type known_hosts lists, as OpenSSH does', async () => {
    const ed25519 = generateHostKey();
    const ecdsa = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 });
    const multiKey = new ssh2.Server({ hostKeys: [ed25519.privateKey, ecdsa.private] }, (connection) => {
      connection.on('error', () => undefined);
      connection.on('authentication', (ctx) => ctx.accept());
      connection.on('session', (accept) => {
        accept().on('exec', (acceptExec) => {
          const channel = acceptExec();
          channel.write('multi-key-boot\n');
          channel.exit(0);
          channel.end();
        });
      });
    });
    await new Promise<void>((resolve) => multiKey.listen(0, '127.0.0.33', resolve));
    try {
      const multiKeyPort = (multiKey.address() as net.AddressInfo).port;
      const onlyEcdsa = `[127.0.0.33]:${multiKeyPort} ${ecdsa.public}\n`;
      const result = await probeSsh({
        ...target('xen-31'),
        host: '127.0.0.33',
        port: multiKeyPort,
        knownHosts: onlyEcdsa,
      });
      expect(result).toEqual({ bootId: 'multi-key-boot' });
    } finally {
      await new Promise((resolve) => multiKey.close(resolve));
    }
  });

  it('reports a key the host does not authorize as SshAuthError, and the host refused it', async () => {
    const before = lastSeq();
    const stranger = generateHostKey('stranger');
    const error = await probeSsh(target('xen-31', { privateKey: stranger.privateKey })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SshAuthError);
    expect((error as Error).message).toContain(`root@127.0.0.31:${port}`);
    expect(opsSince(before, 'ssh.auth', 'xen-31').map((op) => op.detail?.ok)).toEqual([false]);
    expect(opsSince(before, 'ssh.exec', 'xen-31')).toEqual([]);
  });

  it('never puts the private key or its passphrase in errors', async () => {
    const encrypted = ssh2.utils.generateKeyPairSync('ed25519', {
      passphrase: 'correct-horse-passphrase',
      cipher: 'aes256-ctr',
      rounds: 4,
    });
    const error = await probeSsh(
      target('xen-31', { privateKey: encrypted.private, passphrase: 'wrong-battery-passphrase' }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SshAuthError);
    const text = `${(error as Error).message} ${String((error as Error).stack)}`;
    expect(text).not.toContain('correct-horse');
    expect(text).not.toContain('wrong-battery');
    expect(text).not.toContain(encrypted.private.split('\n')[1] ?? 'unreachable');
  });

  it('reports a host that is down as SshConnectError (connection refused), not a timeout', async () => {
    await server('xen-31').setState('down');
    const error = await probeSsh(target('xen-31', { timeoutMs: 20_000 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SshConnectError);
    expect((error as Error).message).toContain(`127.0.0.31:${port}`);
    expect((error as Error).message).toContain('connection refused');
    expect((error as Error).message).toContain('while connecting');
  });

  it('gives up on a blackholed host (TCP accepted, no banner) within timeoutMs, then serves again when up', async () => {
    await server('xen-32').setState('blackhole');
    const timeoutMs = 400;
    const guard = new Promise<'hung'>((resolve) =>
      setTimeout(() => resolve('hung'), timeoutMs + 3_000).unref(),
    );
    const outcome = await Promise.race([
      probeSsh(target('xen-32', { timeoutMs })).catch((e: unknown) => e),
      guard,
    ]);
    expect(outcome).toBeInstanceOf(SshConnectError);
    expect((outcome as Error).message).toContain(`127.0.0.32:${port}`);
    expect((outcome as Error).message).toContain(`timed out after ${timeoutMs} ms while exchanging keys`);

    await server('xen-32').setState('up');
    await expect(probeSsh(target('xen-32'))).resolves.toEqual({ bootId: bootIds.get('xen-32') });
  });

  it('reports a boot id read that fails as SshCommandError with the exit code and output', async () => {
    failBootIdRead = true;
    const error = await probeSsh(target('xen-31')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SshCommandError);
    expect((error as SshCommandError).exitCode).toBe(1);
    expect((error as SshCommandError).output).toBe('cat: boot_id: Input/output error');
  });

  it('sees a new boot id after a reboot', async () => {
    const first = await probeSsh(target('xen-31'));
    bootIds.set('xen-31', randomUUID());
    const second = await probeSsh(target('xen-31'));
    expect(second.bootId).not.toBe(first.bootId);
    expect(second.bootId).toBe(bootIds.get('xen-31'));
  });
});

describe('runSshCommand against the lab', () => {
  it('returns non-zero exits with both streams instead of throwing', async () => {
    const hook = await runSshCommand(target('xen-31'), 'pre-empty-hook');
    expect(hook).toEqual({ exitCode: 3, stdout: 'draining\n', stderr: 'not yet\n' });

    const before = lastSeq();
    const unknown = await runSshCommand(target('xen-31'), 'xe-toolstack-restart --now');
    expect(unknown).toEqual({
      exitCode: 127,
      stdout: '',
      stderr: 'bash: xe-toolstack-restart: command not found\n',
    });
    expect(opsSince(before, 'ssh.exec', 'xen-31').map((op) => op.detail)).toEqual([
      { command: 'xe-toolstack-restart --now', exitCode: 127 },
    ]);
  });

  it('answers the built-in commands like a host', async () => {
    const t = target('xen-32');
    expect((await runSshCommand(t, 'hostname')).stdout).toBe('xen-32\n');
    expect((await runSshCommand(t, 'echo hello lab')).stdout).toBe('hello lab\n');
    expect((await runSshCommand(t, 'true')).exitCode).toBe(0);
    expect((await runSshCommand(t, 'uptime')).stdout).toMatch(
      /^ \d\d:\d\d:\d\d up 3 days, {2}4:05, {2}1 user, {2}load average: [\d.]+, [\d.]+, [\d.]+\n$/,
    );
  });

  it('truncates output beyond maxOutputBytes and says so', async () => {
    const result = await runSshCommand(target('xen-31'), 'echo 0123456789abcdef', { maxOutputBytes: 10 });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('0123456789\n[output truncated: 17 bytes, only the first 10 kept]');
  });
});

describe('lab SSH server', () => {
  it('rejects password logins', async () => {
    const before = lastSeq();
    const client = new ssh2.Client();
    const error = await new Promise<Error & { level?: string }>((resolve, reject) => {
      client.on('ready', () => reject(new Error('password login was accepted')));
      client.on('error', resolve);
      client.connect({
        host: '127.0.0.31',
        port,
        username: 'root',
        password: 'hunter2',
        hostVerifier: () => true,
        readyTimeout: 5_000,
      });
    }).finally(() => client.destroy());
    expect(error.level).toBe('client-authentication');
    expect(opsSince(before, 'ssh.auth', 'xen-31').map((op) => op.detail)).toEqual([
      { ok: false, method: 'password', username: 'root' },
    ]);
  });

  it('lets the standard OpenSSH client log in with the lab key file and known_hosts file', async () => {
    const before = lastSeq();
    const { stdout } = await run(
      '/usr/bin/ssh',
      [
        '-F',
        '/dev/null',
        '-i',
        material.clientKeyFile,
        '-o',
        `UserKnownHostsFile=${material.knownHostsFile}`,
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        'BatchMode=yes',
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        'ConnectTimeout=5',
        '-p',
        String(port),
        'root@127.0.0.32',
        'true',
      ],
      { timeout: 10_000 },
    );
    expect(stdout).toBe('');
    expect(opsSince(before, 'ssh.auth', 'xen-32').map((op) => op.detail?.ok)).toEqual([true]);
    expect(opsSince(before, 'ssh.exec', 'xen-32').map((op) => op.detail)).toEqual([
      { command: 'true', exitCode: 0 },
    ]);
  });
});
