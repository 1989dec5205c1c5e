/**
 * XAPI client for a whole pool: finds and follows the pool master, keeps one session, logs in again
 * when xapi forgets it (master restart), retries only what is safe to retry, and runs Async tasks to
 * completion. Modelled on Xen Orchestra's xen-api client.
 */
import { readFileSync } from 'node:fs';
import {
  ConfigError,
  describeError,
  formatDuration,
  TimeoutError,
  XapiError,
  XapiProtocolError,
  XapiTransportError,
} from '../errors.js';
import { toTaskRecord } from './records.js';
import {
  parseXmlRpcValueFragment,
  XapiCallTransportError,
  type XapiEndpoint,
  xapiCall,
} from './transport.js';

export interface XapiLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface XapiClientOptions {
  /** Addresses of pool hosts to try (any host; CloudStack lists them). */
  hosts: string[];
  port: number;
  protocol: 'http' | 'https';
  caFile?: string;
  tlsInsecure?: boolean;
  username: string;
  password: string;
  /** Default deadline of one call. */
  callTimeoutMs: number;
  /** Total budget to find and log in to the master, back-off included. */
  loginTimeoutMs: number;
  taskPollIntervalMs: number;
  logger?: XapiLogger;
}

const LOGIN_METHOD = 'session.login_with_password';
const API_VERSION = '1.1';
// xapi prunes sessions per originator; naming ourselves keeps our sessions apart from other tools'.
const ORIGINATOR = 'cluster-reboot-bot';
const INITIAL_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;

/** xapi answers these while starting up; the host will answer properly soon. */
const HOST_STARTING_CODES = new Set(['HOST_STILL_BOOTING', 'HOST_HAS_NO_MANAGEMENT_IP']);

const READ_ONLY_METHODS = new Set([
  'host.compute_free_memory',
  'host.compute_memory_overhead',
  'host.get_servertime',
  'host.get_server_localtime',
  'host.get_vms_which_prevent_evacuation',
  'host.assert_can_evacuate',
  'VM.assert_can_boot_here',
  'VM.get_possible_hosts',
  'system.listMethods',
]);

/**
 * Methods that change nothing, so running one twice is harmless: these are retried after a transport
 * error even when the first request may have reached xapi. Everything else is not.
 */
export function isReadOnlyMethod(method: string): boolean {
  if (method.startsWith('Async.')) return false;
  // Covers the generated getters: get_<field>, get_record, get_all, get_all_records(_where), get_by_*.
  return READ_ONLY_METHODS.has(method) || /^[A-Za-z_]+\.get_[A-Za-z0-9_]+$/.test(method);
}

const noopLogger: XapiLogger = { debug() {}, warn() {} };

export class XapiClient {
  readonly #options: XapiClientOptions;
  readonly #ca: string | undefined;
  readonly #logger: XapiLogger;
  /** Known pool host addresses, best guess of the master first. */
  #known: string[];
  #master: string;
  #session: string | undefined;
  #loginInFlight: Promise<string> | undefined;
  #loggedOut = false;

  private constructor(options: XapiClientOptions, ca: string | undefined) {
    const hosts = [...new Set(options.hosts)];
    const first = hosts[0];
    if (first === undefined) throw new ConfigError(['XAPI: no pool host address to connect to']);
    this.#options = options;
    this.#ca = ca;
    this.#logger = options.logger ?? noopLogger;
    this.#known = hosts;
    this.#master = first;
  }

  /** Finds the pool master and logs in. */
  static async connect(options: XapiClientOptions): Promise<XapiClient> {
    const client = new XapiClient(options, readCaFile(options));
    await client.#relogin(undefined);
    return client;
  }

  get masterAddress(): string {
    return this.#master;
  }

  /** Every pool host address learnt so far, the master first. */
  get knownAddresses(): readonly string[] {
    return [...this.#known];
  }

  /** Calls `method` with the session as first parameter. */
  async call<T = unknown>(
    method: string,
    params: unknown[] = [],
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    return (await this.#invoke(method, params, options.timeoutMs ?? this.#options.callTimeoutMs)) as T;
  }

  /**
   * Runs `Async.<method>` and waits for its task. The task is destroyed afterwards; on timeout or abort
   * it is cancelled first. A task that disappears (master restart) is an `XapiTransportError`: whether
   * the operation happened is unknown, so the caller must re-read the state.
   */
  async callAsync<T = unknown>(
    method: string,
    params: unknown[] = [],
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.#options.callTimeoutMs;
    const userSignal = options.signal;
    userSignal?.throwIfAborted();
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(new TimeoutError(`XAPI ${method}`, timeoutMs)), timeoutMs);
    const onAbort = () => stop.abort(userSignal?.reason);
    userSignal?.addEventListener('abort', onAbort, { once: true });
    try {
      const callTimeoutMs = Math.min(this.#options.callTimeoutMs, timeoutMs);
      const task = await this.#invoke(`Async.${method}`, params, callTimeoutMs, stop.signal);
      if (typeof task !== 'string') {
        throw new XapiProtocolError(`XAPI Async.${method}: expected a task reference, got a ${typeof task}`);
      }
      try {
        return (await this.#awaitTask(task, method, stop.signal)) as T;
      } catch (error) {
        if (stop.signal.aborted) await this.#bestEffort('task.cancel', [task]);
        throw error;
      } finally {
        await this.#bestEffort('task.destroy', [task]);
      }
    } catch (error) {
      throw stop.signal.aborted ? stop.signal.reason : error;
    } finally {
      clearTimeout(timer);
      userSignal?.removeEventListener('abort', onAbort);
    }
  }

  /** Ends the session (best effort). The client cannot be used afterwards. */
  async logout(): Promise<void> {
    this.#loggedOut = true;
    const session = this.#session;
    this.#session = undefined;
    if (session === undefined) return;
    try {
      await xapiCall(this.#endpoint(this.#master), 'session.logout', [session], {
        timeoutMs: this.#options.callTimeoutMs,
      });
    } catch (error) {
      this.#logger.debug({ host: this.#master, error: describeError(error) }, 'XAPI logout failed');
    }
  }

  async #invoke(
    method: string,
    params: unknown[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const readOnly = isReadOnlyMethod(method);
    let sessionRetried = false;
    let retryDeadline: number | undefined;
    for (;;) {
      if (this.#loggedOut)
        throw new XapiTransportError(`XAPI ${method}: the client has logged out`, method, this.#master);
      const session = this.#session ?? (await untilAborted(this.#relogin(undefined), signal));
      const host = this.#master;
      try {
        return await xapiCall(this.#endpoint(host), method, [session, ...params], { timeoutMs, signal });
      } catch (error) {
        if (signal?.aborted) throw error;
        // xapi checks the session (and the host's role) before running anything, so the call did not run.
        if (isXapiCode(error, 'SESSION_INVALID', 'HOST_IS_SLAVE') && !sessionRetried) {
          sessionRetried = true;
          this.#logger.debug({ method, host, code: error.xapiCode }, 'XAPI session lost; logging in again');
          await untilAborted(
            this.#relogin(session, error.xapiCode === 'HOST_IS_SLAVE' ? error.params[0] : undefined),
            signal,
          );
          continue;
        }
        if (error instanceof XapiCallTransportError && isRetryableTransport(error, readOnly)) {
          retryDeadline ??= Date.now() + this.#options.loginTimeoutMs;
          if (Date.now() < retryDeadline) {
            this.#logger.warn(
              { method, host, cause: error.causeCode },
              'XAPI call failed on the way; logging in again and retrying',
            );
            await untilAborted(this.#relogin(session), signal);
            continue;
          }
        }
        throw error;
      }
    }
  }

  /** Logs in again unless another caller already replaced `stale`; concurrent callers share one login. */
  #relogin(stale: string | undefined, preferredAddress?: string): Promise<string> {
    if (this.#session !== undefined && this.#session !== stale) return Promise.resolve(this.#session);
    if (preferredAddress) this.#promote(preferredAddress);
    this.#session = undefined;
    if (!this.#loginInFlight) {
      const login = this.#login().finally(() => {
        this.#loginInFlight = undefined;
      });
      this.#loginInFlight = login;
    }
    return this.#loginInFlight;
  }

  async #login(): Promise<string> {
    const deadline = Date.now() + this.#options.loginTimeoutMs;
    const triedThisRound = new Set<string>();
    const tried: string[] = [];
    let backoffMs = INITIAL_BACKOFF_MS;
    let redirect: string | undefined;
    let lastError: unknown;
    for (;;) {
      const address = redirect ?? this.#known.find((known) => !triedThisRound.has(known));
      redirect = undefined;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw this.#loginGaveUp(lastError, tried);
      if (address === undefined) {
        // Every known host failed in this round: wait before asking them all again.
        const waitMs = Math.min(jittered(backoffMs), remaining);
        this.#logger.debug({ waitMs, tried: [...triedThisRound] }, 'XAPI master not found yet; backing off');
        await sleep(waitMs);
        backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
        triedThisRound.clear();
        continue;
      }
      triedThisRound.add(address);
      if (!tried.includes(address)) tried.push(address);
      try {
        const session = await xapiCall(
          this.#endpoint(address),
          LOGIN_METHOD,
          [this.#options.username, this.#options.password, API_VERSION, ORIGINATOR],
          { timeoutMs: Math.min(this.#options.callTimeoutMs, remaining) },
        );
        if (typeof session !== 'string') {
          throw new XapiProtocolError(`XAPI ${LOGIN_METHOD} on ${address}: expected a session reference`);
        }
        this.#master = address;
        this.#promote(address);
        this.#session = session;
        this.#logger.debug({ host: address }, 'XAPI logged in to the pool master');
        await this.#learnHostAddresses(session);
        return session;
      } catch (caught) {
        const error = this.#withoutPassword(caught);
        lastError = error;
        if (isXapiCode(error, 'HOST_IS_SLAVE')) {
          // A member that does not know its master's address names nobody: ask the others.
          const master = error.params[0];
          if (master) {
            this.#logger.debug(
              { host: address, master },
              'XAPI host is a pool member; following it to the master',
            );
            this.#addKnown(master);
            this.#promote(master);
            if (!triedThisRound.has(master)) redirect = master;
          }
          continue;
        }
        if (isXapiCode(error, ...HOST_STARTING_CODES)) continue;
        if (error instanceof XapiCallTransportError && !isTlsFailure(error.causeCode)) continue;
        throw error;
      }
    }
  }

  /** Remembers every pool host's address, so a master that goes away can be looked for elsewhere. */
  async #learnHostAddresses(session: string): Promise<void> {
    try {
      const records = await xapiCall(this.#endpoint(this.#master), 'host.get_all_records', [session], {
        timeoutMs: this.#options.callTimeoutMs,
      });
      if (typeof records !== 'object' || records === null) return;
      for (const record of Object.values(records)) {
        const address = (record as { address?: unknown }).address;
        if (typeof address === 'string' && address !== '') this.#addKnown(address);
      }
    } catch (error) {
      this.#logger.warn(
        { host: this.#master, error: describeError(error) },
        'XAPI could not list the pool hosts',
      );
    }
  }

  async #awaitTask(task: string, method: string, signal: AbortSignal): Promise<unknown> {
    for (;;) {
      let raw: unknown;
      try {
        raw = await this.#invoke('task.get_record', [task], this.#options.callTimeoutMs, signal);
      } catch (error) {
        if (!signal.aborted && isXapiCode(error, 'HANDLE_INVALID', 'SESSION_INVALID')) {
          throw new XapiTransportError(
            `XAPI ${method}: task ${task} was lost (the pool master probably restarted); its outcome is unknown`,
            method,
            this.#master,
            { cause: error },
          );
        }
        throw error;
      }
      const record = toTaskRecord(task, raw);
      switch (record.status) {
        case 'success':
          return parseXmlRpcValueFragment(record.result, method);
        case 'failure': {
          const [code, ...params] = record.errorInfo;
          if (code === undefined)
            throw new XapiProtocolError(`XAPI ${method}: task ${task} failed without error_info`);
          throw new XapiError(code, params, method);
        }
        case 'cancelled':
          throw new XapiError('TASK_CANCELLED', [task], method);
        default:
          await sleep(this.#options.taskPollIntervalMs, signal);
      }
    }
  }

  /** One attempt, errors ignored: used for clean-up that must not delay or mask the real outcome. */
  async #bestEffort(method: string, params: unknown[]): Promise<void> {
    const session = this.#session;
    if (session === undefined) return;
    try {
      await xapiCall(this.#endpoint(this.#master), method, [session, ...params], {
        timeoutMs: this.#options.callTimeoutMs,
      });
    } catch (error) {
      this.#logger.debug({ method, error: describeError(error) }, 'XAPI clean-up call failed');
    }
  }

  #loginGaveUp(lastError: unknown, tried: string[]): XapiTransportError {
    const last = lastError === undefined ? '' : `: ${describeError(lastError)}`;
    return new XapiTransportError(
      `could not log in to the XAPI pool master within ${formatDuration(this.#options.loginTimeoutMs)} (tried ${tried.join(', ') || 'no host'})${last}`,
      LOGIN_METHOD,
      tried.at(-1) ?? this.#master,
      { cause: lastError },
    );
  }

  /**
   * A server may echo what it was sent, and error parameters are passed on verbatim: the password must
   * not travel on in them. (Transport and protocol errors never quote the request.)
   */
  #withoutPassword(error: unknown): unknown {
    const password = this.#options.password;
    if (password === '' || !(error instanceof XapiError)) return error;
    if (!error.params.some((param) => param.includes(password))) return error;
    return new XapiError(
      error.xapiCode,
      error.params.map((param) => param.split(password).join('***')),
      error.method,
    );
  }

  #endpoint(address: string): XapiEndpoint {
    const endpoint: XapiEndpoint = { address, port: this.#options.port, protocol: this.#options.protocol };
    if (this.#ca !== undefined) endpoint.ca = this.#ca;
    if (this.#options.tlsInsecure) endpoint.tlsInsecure = true;
    return endpoint;
  }

  #addKnown(address: string): void {
    if (!this.#known.includes(address)) this.#known.push(address);
  }

  #promote(address: string): void {
    this.#known = [address, ...this.#known.filter((known) => known !== address)];
  }
}

function readCaFile(options: XapiClientOptions): string | undefined {
  if (options.protocol !== 'https' || options.caFile === undefined) return undefined;
  try {
    return readFileSync(options.caFile, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? describeError(error);
    throw new ConfigError([`XAPI_CA_FILE ${options.caFile} cannot be read (${code})`]);
  }
}

function isXapiCode(error: unknown, ...codes: string[]): error is XapiError {
  return error instanceof XapiError && codes.includes(error.xapiCode);
}

/**
 * Read-only calls may run twice; others only when the request certainly never reached xapi. A TLS
 * failure is a configuration problem that retrying cannot fix.
 */
function isRetryableTransport(error: XapiCallTransportError, readOnly: boolean): boolean {
  if (isTlsFailure(error.causeCode)) return false;
  return readOnly || !error.requestMayHaveArrived;
}

function isTlsFailure(code: string): boolean {
  return (
    code.includes('CERT') ||
    code.startsWith('ERR_TLS') ||
    code.startsWith('ERR_SSL') ||
    code.includes('SIGNATURE')
  );
}

/** Full jitter between half and all of the delay, so many clients do not retry in lockstep. */
function jittered(ms: number): number {
  return Math.round(ms / 2 + Math.random() * (ms / 2));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Waits for `promise` but gives up as soon as `signal` aborts (the shared login goes on for others). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
