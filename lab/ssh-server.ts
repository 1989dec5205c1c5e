/**
 * A simulated host's sshd: real SSH (ssh2) on the host's own 127.0.0.x address, public-key login for one
 * user and key, and `exec` answers for the few commands the bot and its hooks run. Its state models the
 * host's life cycle: `up` serves, `down` refuses connections (the host is off), `blackhole` accepts TCP and
 * never answers (a hung host or a firewall dropping packets).
 */

import net from 'node:net';
import ssh2, { type AuthContext, type Connection, type ParsedKey } from 'ssh2';
import type { OperationLog } from './operation-log.js';

const { Server, utils } = ssh2;
type SshServer = InstanceType<typeof Server>;

export type LabSshState = 'up' | 'down' | 'blackhole';

export interface LabExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface LabSshServerOptions {
  address: string;
  port: number;
  hostName: string;
  /** Private key, OpenSSH format. */
  hostKey: string;
  /** The client's public key line. */
  authorizedKey: string;
  /** 'root' */
  username: string;
  /** Changes each boot. */
  bootId(): string;
  uptimeSeconds(): number;
  /** Lets the lab answer extra commands (hooks); undefined = not handled here. */
  onExec?(command: string): LabExecResult | undefined;
  log: OperationLog;
}

export interface LabSshServer {
  readonly address: string;
  readonly port: number;
  state(): LabSshState;
  /**
   * down: stop listening + destroy connections (connection refused);
   * blackhole: listen but never answer; up: serve.
   */
  setState(state: LabSshState): Promise<void>;
  /** E.g. a reinstall across a reboot; connections already open keep the old key. */
  replaceHostKey(privateKey: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startLabSshServer(options: LabSshServerOptions): Promise<LabSshServer> {
  const server = new LabSshHost(options);
  await server.setState('up');
  return server;
}

class LabSshHost implements LabSshServer {
  readonly address: string;
  #port: number;
  #state: LabSshState = 'down';
  #listener: net.Server | undefined;
  #ssh: SshServer;
  /** Sockets handed to the SSH server while up. */
  readonly #served = new Set<net.Socket>();
  /** Sockets accepted while blackholed, or silenced when the host went from up to blackhole. */
  readonly #silenced = new Set<net.Socket>();
  /** State changes run one at a time, in call order. */
  #pending: Promise<void> = Promise.resolve();
  readonly #authorizedKey: ParsedKey;

  constructor(private readonly options: LabSshServerOptions) {
    this.address = options.address;
    this.#port = options.port;
    this.#authorizedKey = parsePublicKey(options.authorizedKey);
    this.#ssh = this.#createSshServer(options.hostKey);
  }

  get port(): number {
    return this.#port;
  }

  state(): LabSshState {
    return this.#state;
  }

  setState(state: LabSshState): Promise<void> {
    return this.#serialized(() => this.#changeState(state));
  }

  replaceHostKey(privateKey: string): Promise<void> {
    return this.#serialized(async () => {
      this.#ssh = this.#createSshServer(privateKey);
    });
  }

  stop(): Promise<void> {
    return this.setState('down');
  }

  #serialized(change: () => Promise<void>): Promise<void> {
    const run = this.#pending.then(change);
    this.#pending = run.catch(() => undefined);
    return run;
  }

  async #changeState(next: LabSshState): Promise<void> {
    const previous = this.#state;
    if (next === previous) return;
    if (next === 'down') {
      this.#state = next;
      await this.#closeListener();
      return;
    }
    if (previous === 'down') await this.#listen();
    this.#state = next;
    if (next === 'blackhole') {
      // A hung host stops answering on open connections too, without closing them.
      for (const socket of this.#served) this.#silence(socket);
      this.#served.clear();
    } else {
      // Coming back is a fresh start: whatever waited on the hung host is gone.
      for (const socket of this.#silenced) socket.destroy();
    }
  }

  #listen(): Promise<void> {
    const listener = net.createServer((socket) => this.#accept(socket));
    return new Promise((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ host: this.address, port: this.#port }, () => {
        listener.off('error', reject);
        const bound = listener.address();
        if (bound && typeof bound === 'object') this.#port = bound.port;
        this.#listener = listener;
        resolve();
      });
    });
  }

  async #closeListener(): Promise<void> {
    const listener = this.#listener;
    this.#listener = undefined;
    for (const socket of [...this.#served, ...this.#silenced]) socket.destroy();
    if (listener) await new Promise<void>((resolve) => listener.close(() => resolve()));
  }

  #accept(socket: net.Socket): void {
    // Clients that give up and reset are normal here; they must not crash the lab.
    socket.on('error', () => undefined);
    if (this.#state !== 'up') {
      this.#silence(socket);
      return;
    }
    this.#served.add(socket);
    socket.once('close', () => this.#served.delete(socket));
    this.#ssh.injectSocket(socket);
  }

  #silence(socket: net.Socket): void {
    socket.pause();
    this.#silenced.add(socket);
    socket.once('close', () => this.#silenced.delete(socket));
  }

  #createSshServer(hostKey: string): SshServer {
    return new Server({ hostKeys: [hostKey] }, (connection) => this.#onConnection(connection));
  }

  #onConnection(connection: Connection): void {
    const { log, hostName } = this.options;
    connection.on('error', () => undefined);
    connection.on('authentication', (ctx) => {
      if (ctx.method === 'none') return ctx.reject(['publickey']);
      const ok =
        ctx.method === 'publickey' && ctx.username === this.options.username && this.#keyIsAuthorized(ctx);
      // A key offered without a signature is only a question ("would you accept it?"), not a login.
      const isQuery = ctx.method === 'publickey' && ctx.signature === undefined;
      if (!(ok && isQuery)) {
        log.record({
          kind: 'ssh.auth',
          host: hostName,
          detail: { ok, method: ctx.method, username: ctx.username },
        });
      }
      if (ok) ctx.accept();
      else ctx.reject(['publickey']);
    });
    connection.on('session', (acceptSession) => {
      const session = acceptSession();
      session.on('pty', (_accept, reject) => reject());
      session.on('shell', (_accept, reject) => reject());
      session.on('subsystem', (_accept, reject) => reject());
      session.on('env', (_accept, reject) => reject());
      session.on('exec', (acceptExec, _reject, info) => {
        const result = this.#answer(info.command);
        log.record({
          kind: 'ssh.exec',
          host: hostName,
          detail: { command: info.command, exitCode: result.exitCode },
        });
        const channel = acceptExec();
        if (result.stdout) channel.write(result.stdout);
        if (result.stderr) channel.stderr.write(result.stderr);
        channel.exit(result.exitCode);
        channel.end();
      });
    });
  }

  #keyIsAuthorized(ctx: AuthContext): boolean {
    if (ctx.method !== 'publickey') return false;
    const allowed = this.#authorizedKey;
    if (!ctx.key.data.equals(allowed.getPublicSSH())) return false;
    if (ctx.signature === undefined || ctx.blob === undefined) return true;
    return allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true;
  }

  #answer(command: string): LabExecResult {
    const custom = this.options.onExec?.(command);
    if (custom) return custom;
    return answerBuiltIn(command.trim(), this.options);
  }
}

function answerBuiltIn(
  command: string,
  host: Pick<LabSshServerOptions, 'hostName' | 'bootId' | 'uptimeSeconds'>,
): LabExecResult {
  const ok = (stdout: string): LabExecResult => ({ exitCode: 0, stdout, stderr: '' });
  if (command === 'true') return ok('');
  if (command === 'uptime') return ok(`${formatUptime(host.uptimeSeconds(), new Date())}\n`);
  if (command === 'cat /proc/sys/kernel/random/boot_id') return ok(`${host.bootId()}\n`);
  if (command === 'hostname') return ok(`${host.hostName}\n`);
  if (command === 'echo' || command.startsWith('echo ')) return ok(`${unquote(command.slice(5).trim())}\n`);
  const program = command.split(/\s+/)[0] ?? command;
  return { exitCode: 127, stdout: '', stderr: `bash: ${program}: command not found\n` };
}

/** The procps format: ` 10:04:07 up 2 days,  3:04,  1 user,  load average: 0.08, 0.03, 0.01`. */
export function formatUptime(uptimeSeconds: number, now: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const clock = `${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}`;
  const totalMinutes = Math.floor(Math.max(0, uptimeSeconds) / 60);
  const days = Math.floor(totalMinutes / (60 * 24));
  const hours = Math.floor(totalMinutes / 60) % 24;
  const minutes = totalMinutes % 60;
  const dayPart = days > 0 ? `${days} day${days === 1 ? '' : 's'}, ` : '';
  const timePart = hours > 0 ? `${String(hours).padStart(2, ' ')}:${two(minutes)}, ` : `${minutes} min, `;
  return ` ${clock} up ${dayPart}${timePart} 1 user,  load average: 0.00, 0.01, 0.05`;
}

function unquote(text: string): string {
  const quoted = /^(['"])(.*)\1$/s.exec(text);
  return quoted ? (quoted[2] ?? '') : text;
}

function parsePublicKey(line: string): ParsedKey {
  const parsed = utils.parseKey(line);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || key instanceof Error) {
    throw new Error(`lab SSH server: the authorized key is not an OpenSSH public key line`);
  }
  return key;
}
