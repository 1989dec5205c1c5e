/**
 * One SSH command per connection: connect, check the host key against known_hosts, authenticate with a key,
 * run the command, disconnect. Used for the liveness probe (boot id) and for hooks.
 */

import net from 'node:net';
import ssh2 from 'ssh2';
import {
  formatDuration,
  SshAuthError,
  SshCommandError,
  SshConnectError,
  SshHostKeyChangedError,
  SshHostKeyUnknownError,
} from '../errors.js';
import {
  fingerprintSha256,
  type KnownHostKeys,
  keyBlobType,
  knownHostsName,
  lookupHostKeys,
} from './known-hosts.js';

const { Client, utils } = ssh2;

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey: string | Buffer;
  passphrase?: string;
  /** The known_hosts file's text (the caller reads the file). */
  knownHosts: string;
  /** Bound on the whole operation: connect + auth + command. */
  timeoutMs: number;
}

export interface SshCommandResult {
  exitCode: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

export interface SshCommandOptions {
  /** Per stream; output beyond it is dropped and a note says so. Default 64 KiB. */
  maxOutputBytes?: number;
}

export const BOOT_ID_COMMAND = 'cat /proc/sys/kernel/random/boot_id';
const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024;
/** After a clean `end()`, how long the server gets to close its side before the socket is destroyed. */
const CLOSE_GRACE_MS = 1_000;

type Phase = 'connecting' | 'exchanging keys' | 'authenticating' | 'running the command';

/** Liveness: connect, authenticate, read the boot id; throws typed errors. */
export async function probeSsh(target: SshTarget): Promise<{ bootId: string }> {
  const result = await runSshCommand(target, BOOT_ID_COMMAND, { maxOutputBytes: 4096 });
  const where = `${target.host}:${target.port}`;
  if (result.exitCode !== 0) {
    const output = (result.stderr || result.stdout).trim();
    throw new SshCommandError(
      `SSH liveness check on ${where} failed: "${BOOT_ID_COMMAND}" ended with ${describeExit(result)}${output ? `: ${output}` : ''}`,
      result.exitCode,
      output,
    );
  }
  const bootId = result.stdout.trim();
  if (bootId === '') {
    throw new SshCommandError(`SSH liveness check on ${where}: "${BOOT_ID_COMMAND}" printed nothing`, 0, '');
  }
  return { bootId };
}

/** Runs one command; a non-zero exit is a result, not an error. Connection problems throw typed errors. */
export async function runSshCommand(
  target: SshTarget,
  command: string,
  options: SshCommandOptions = {},
): Promise<SshCommandResult> {
  checkPrivateKey(target);
  const known = lookupHostKeys(target.knownHosts, target.host, target.port);
  const maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const where = `${target.host}:${target.port}`;

  return new Promise<SshCommandResult>((resolve, reject) => {
    let phase: Phase = 'connecting';
    let settled = false;
    // Set by the host key check; the connection error ssh2 raises afterwards is only its consequence.
    let hostKeyError: Error | undefined;

    const socket = net.connect({ host: target.host, port: target.port });
    const client = new Client();
    const timer = setTimeout(() => fail(timeoutError()), target.timeoutMs);

    function settle(): boolean {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      return true;
    }
    function fail(error: Error): void {
      if (!settle()) return;
      client.destroy();
      socket.destroy();
      reject(hostKeyError ?? error);
    }
    function succeed(result: SshCommandResult): void {
      if (!settle()) return;
      client.end();
      setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      resolve(result);
    }
    function timeoutError(): SshConnectError {
      return new SshConnectError(
        `SSH to ${target.username}@${where} timed out after ${formatDuration(target.timeoutMs)} while ${phase}`,
      );
    }
    function classify(error: Error & { level?: string; code?: unknown }): Error {
      if (error.level === 'client-authentication') {
        return new SshAuthError(
          `SSH authentication as ${target.username}@${where} failed: the server refused the key (${error.message})`,
          { cause: error },
        );
      }
      if (error.level === 'client-timeout') return timeoutError();
      return new SshConnectError(`SSH to ${where} failed while ${phase}: ${socketReason(error)}`, {
        cause: error,
      });
    }
    function verifyHostKey(offered: Buffer): boolean {
      hostKeyError = hostKeyProblem(target.host, target.port, known, offered);
      return hostKeyError === undefined;
    }
    function exec(): void {
      phase = 'running the command';
      client.exec(command, (error, channel) => {
        if (error) {
          fail(new SshConnectError(`SSH to ${where}: could not start the command: ${error.message}`));
          return;
        }
        const stdout = new CappedOutput(maxOutputBytes);
        const stderr = new CappedOutput(maxOutputBytes);
        let exitCode: number | null = null;
        let signal: string | undefined;
        channel.on('data', (chunk: Buffer) => stdout.add(chunk));
        channel.stderr.on('data', (chunk: Buffer) => stderr.add(chunk));
        channel.on('exit', (code: number | null, exitSignal?: string) => {
          exitCode = code;
          signal = exitSignal;
        });
        channel.on('close', () => {
          succeed({
            exitCode,
            ...(signal === undefined ? {} : { signal }),
            stdout: stdout.text(),
            stderr: stderr.text(),
          });
        });
      });
    }

    socket.once('connect', () => {
      phase = 'exchanging keys';
    });
    client.on('handshake', () => {
      phase = 'authenticating';
    });
    client.on('ready', exec);
    client.on('error', (error) => fail(classify(error)));
    client.on('close', () =>
      fail(new SshConnectError(`SSH to ${where}: the connection closed while ${phase}`)),
    );

    try {
      client.connect({
        sock: socket,
        username: target.username,
        privateKey: target.privateKey,
        ...(target.passphrase === undefined ? {} : { passphrase: target.passphrase }),
        readyTimeout: target.timeoutMs,
        hostVerifier: verifyHostKey,
        algorithms: { serverHostKey: hostKeyAlgorithmsFor(known) },
      });
    } catch (error) {
      fail(classify(error as Error));
    }
  });
}

/** Parsing up front gives a clear error before any connection; ssh2's messages never include key material. */
function checkPrivateKey(target: SshTarget): void {
  const parsed = utils.parseKey(target.privateKey, target.passphrase);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  const problem =
    key instanceof Error ? key.message : !key?.isPrivateKey() ? 'it is not a private key' : undefined;
  if (problem !== undefined) {
    throw new SshAuthError(
      `The SSH private key for ${target.username}@${target.host}:${target.port} cannot be used: ${problem}`,
    );
  }
}

function hostKeyProblem(
  host: string,
  port: number,
  known: KnownHostKeys,
  offered: Buffer,
): Error | undefined {
  const where = `${host}:${port}`;
  if (known.trusted.some((entry) => entry.key.equals(offered))) return undefined;
  const offeredText = `${keyBlobType(offered) ?? 'unknown type'} key ${fingerprintSha256(offered)}`;
  if (known.revoked.some((entry) => entry.key.equals(offered))) {
    return new SshHostKeyChangedError(
      `Host key for ${where} is marked @revoked in known_hosts: the server offered ${offeredText}`,
    );
  }
  if (known.trusted.length === 0) {
    return new SshHostKeyUnknownError(
      `Host key for ${where} is unknown: the server offered ${offeredText}; the known_hosts file must list it ` +
        `(a line "${knownHostsName(host, port)} ${keyBlobType(offered) ?? 'type'} <base64 key>")`,
    );
  }
  const knownTypes = [...new Set(known.trusted.map((entry) => entry.type))].join(', ');
  return new SshHostKeyChangedError(
    `Host key for ${where} changed: the server offered ${offeredText}, which matches none of the ` +
      `${known.trusted.length} key(s) known_hosts lists for it (${knownTypes}); refusing to connect`,
  );
}

const DEFAULT_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const;
type HostKeyAlgorithm = (typeof DEFAULT_HOST_KEY_ALGORITHMS)[number];

const ALGORITHMS_FOR_KEY_TYPE: Record<string, readonly HostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/**
 * Like OpenSSH, ask first for the key types known_hosts already has for the host, so a host with several
 * keys is not reported as "changed" just because it offered another type first.
 */
function hostKeyAlgorithmsFor(known: KnownHostKeys): HostKeyAlgorithm[] {
  const preferred = [...new Set(known.trusted.flatMap((entry) => ALGORITHMS_FOR_KEY_TYPE[entry.type] ?? []))];
  return [...preferred, ...DEFAULT_HOST_KEY_ALGORITHMS.filter((algorithm) => !preferred.includes(algorithm))];
}

function socketReason(error: Error & { code?: unknown }): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset by the peer';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    default:
      return error.message;
  }
}

function describeExit(result: SshCommandResult): string {
  return result.signal ? `signal ${result.signal}` : `exit code ${result.exitCode ?? 'none'}`;
}

/** Keeps reading past the cap (a full SSH window would stall the remote command) but drops the excess. */
class CappedOutput {
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  #total = 0;

  constructor(readonly maxBytes: number) {}

  add(chunk: Buffer): void {
    this.#total += chunk.length;
    const room = this.maxBytes - this.#kept;
    if (room <= 0) return;
    const kept = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.#chunks.push(kept);
    this.#kept += kept.length;
  }

  text(): string {
    const text = Buffer.concat(this.#chunks).toString('utf8');
    if (this.#total <= this.maxBytes) return text;
    return `${text}\n[output truncated: ${this.#total} bytes, only the first ${this.maxBytes} kept]`;
  }
}
