/**
 * One XML-RPC call to one XAPI host: encodes parameters the way xapi expects (int64 as decimal strings,
 * UTC datetimes), enforces a hard deadline, and turns every outcome into a value or a typed error.
 */
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import xmlrpc from 'xmlrpc';
import { formatDuration, XapiError, XapiProtocolError, XapiTransportError } from '../errors.js';

export interface XapiEndpoint {
  address: string;
  port: number;
  protocol: 'http' | 'https';
  /** PEM text of the CA that signed the hosts' certificates. */
  ca?: string;
  /** Accept any certificate; only when explicitly configured. */
  tlsInsecure?: boolean;
}

export interface XapiCallOptions {
  timeoutMs: number;
  /** Aborting rejects at once with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * A transport failure with what the caller needs to decide on a retry: the network cause code and
 * whether the request may have reached xapi (a refused connection certainly did not; a timeout or a
 * reset after connecting may have).
 */
export class XapiCallTransportError extends XapiTransportError {
  constructor(
    message: string,
    method: string,
    host: string,
    readonly causeCode: string,
    readonly requestMayHaveArrived: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, method, host, options);
  }
}

/** An int64 parameter as xapi wants it: a decimal string. */
export function int64(n: number | bigint): string {
  if (typeof n === 'number' && !Number.isSafeInteger(n)) throw new RangeError(`not an integer: ${n}`);
  return n.toString();
}

/** A float parameter sent as `<double>` even when it is integral (e.g. `event.from`'s timeout). */
export function xapiDouble(n: number): xmlrpc.CustomType {
  return typedValue('double', formatDoubleParam(n));
}

/** The envelope decoded, or a typed error. Exported for the client's task results and for tests. */
export async function xapiCall(
  endpoint: XapiEndpoint,
  method: string,
  params: readonly unknown[],
  options: XapiCallOptions,
): Promise<unknown> {
  options.signal?.throwIfAborted();
  const encoded = encodeParams(method, params);
  const raw = await rawMethodCall(endpoint, method, encoded, options);
  return decodeEnvelope(raw, method, endpoint.address);
}

/** Parses an XML-RPC value fragment such as a task's `result` (`<value>OpaqueRef:…</value>`). */
export async function parseXmlRpcValueFragment(fragment: string, method: string): Promise<unknown> {
  // Old xapi versions leave the result of a void method empty instead of `<value></value>`.
  if (fragment.trim() === '') return '';
  const document = `<?xml version="1.0"?><methodResponse><params><param>${fragment}</param></params></methodResponse>`;
  return new Promise((resolve, reject) => {
    let settled = false;
    new Deserializer().deserializeMethodResponse(
      Readable.from([document], { objectMode: false }),
      (error, value) => {
        if (settled) return;
        settled = true;
        if (error)
          reject(
            new XapiProtocolError(`XAPI ${method}: task result is not an XML-RPC value (${error.message})`),
          );
        else resolve(value);
      },
    );
  });
}

interface MethodResponseDeserializer {
  deserializeMethodResponse(
    stream: Readable,
    callback: (error: Error | null | undefined, value?: unknown) => void,
  ): void;
}

interface DeserializerInternals {
  onDone(this: DeserializerInternals): void;
  onError(this: DeserializerInternals, error: unknown): void;
}

// The package ships no types for its deserializer module; this is the one function used. It is the
// same module the package's client parses answers with.
const Deserializer = createRequire(import.meta.url)('xmlrpc/lib/deserializer') as {
  prototype: DeserializerInternals;
} & (new () => MethodResponseDeserializer);

// xmlrpc 1.3 builds the error for a `<fault>` in the parser's end handler without a try: an empty
// `<fault/>` throws there, outside any callback, and would crash the whole process. Route it to
// the parser's own error path instead.
const onDone = Deserializer.prototype.onDone;
Deserializer.prototype.onDone = function guardedOnDone() {
  try {
    onDone.call(this);
  } catch (error) {
    this.onError(error);
  }
};

/** Far above the largest real answer (all VM records of a big pool are a few MiB). */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

type ClientOptions = Exclude<Parameters<typeof xmlrpc.createClient>[0], string>;

/** Node's request options that the xmlrpc package passes through untouched to http(s).request. */
interface PassThroughClientOptions extends ClientOptions {
  agent: http.Agent;
  ca?: string;
  rejectUnauthorized?: boolean;
}

interface ClientFailure extends Error {
  code?: unknown;
  faultCode?: unknown;
  res?: http.IncomingMessage;
}

function rawMethodCall(
  endpoint: XapiEndpoint,
  method: string,
  params: unknown[],
  options: XapiCallOptions,
): Promise<unknown> {
  const target = `${endpoint.address}:${endpoint.port}`;
  // A fresh connection per call: a refused connection then proves the request never arrived, and no
  // stale keep-alive socket can turn a mutating call into an "it may have run" reset.
  const agent =
    endpoint.protocol === 'https'
      ? new https.Agent({ keepAlive: false })
      : new http.Agent({ keepAlive: false });
  let connected = false;
  const sockets: Socket[] = [];
  // The xmlrpc package keeps the whole body and its parse in memory with no limit: count what
  // arrives on the socket and give up once it is more than any xapi answer could be.
  let received = 0;
  let tooLarge = () => {};
  const createConnection = agent.createConnection.bind(agent) as (...args: unknown[]) => Socket;
  (agent as unknown as { createConnection: (...args: unknown[]) => Socket }).createConnection = (...args) => {
    const socket = createConnection(...args);
    sockets.push(socket);
    socket.once(endpoint.protocol === 'https' ? 'secureConnect' : 'connect', () => {
      connected = true;
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_RESPONSE_BYTES) tooLarge();
    });
    return socket;
  };

  return new Promise<unknown>((resolve, reject) => {
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      // Destroying the socket ends the request whatever its state; its late events land in listeners
      // the package keeps attached and reach `finish` again, which ignores them.
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      outcome();
    };
    const onAbort = () => finish(() => reject(options.signal?.reason));
    const timer = setTimeout(
      () =>
        finish(() =>
          reject(
            new XapiCallTransportError(
              `XAPI ${method} on ${target} did not answer within ${formatDuration(options.timeoutMs)}`,
              method,
              endpoint.address,
              'ETIMEDOUT',
              connected,
            ),
          ),
        ),
      options.timeoutMs,
    );
    options.signal?.addEventListener('abort', onAbort, { once: true });
    tooLarge = () =>
      finish(() =>
        reject(
          new XapiProtocolError(
            `XAPI ${method} on ${target} answered more than ${MAX_RESPONSE_BYTES} bytes; gave up reading it`,
          ),
        ),
      );

    const clientOptions: PassThroughClientOptions = {
      host: endpoint.address,
      port: endpoint.port,
      path: '/',
      agent,
    };
    if (endpoint.protocol === 'https') {
      if (endpoint.ca !== undefined) clientOptions.ca = endpoint.ca;
      if (endpoint.tlsInsecure) clientOptions.rejectUnauthorized = false;
    }
    const client =
      endpoint.protocol === 'https'
        ? xmlrpc.createSecureClient(clientOptions)
        : xmlrpc.createClient(clientOptions);
    try {
      client.methodCall(method, params, (error, value) => {
        finish(() => {
          if (error)
            reject(classifyFailure(error as ClientFailure, method, endpoint.address, target, connected));
          else resolve(value);
        });
      });
    } catch {
      // The serializer's messages quote the offending string, which may be a password: keep them out.
      finish(() =>
        reject(new XapiProtocolError(`XAPI ${method}: the parameters cannot be encoded as XML-RPC`)),
      );
    }
  });
}

// The package's errors carry the request and the response body as hidden properties; neither is kept
// (the login request holds the password), only the code and the message.
function classifyFailure(
  error: ClientFailure,
  method: string,
  host: string,
  target: string,
  connected: boolean,
): Error {
  // An XML-RPC <fault> (the package copies faultCode to `code`) is an answer, not a network failure.
  if ('faultCode' in error) {
    return new XapiProtocolError(
      `XAPI ${method} on ${target} answered an XML-RPC fault instead of a XAPI envelope`,
    );
  }
  if (typeof error.code === 'string') {
    return new XapiCallTransportError(
      `XAPI ${method} on ${target} failed: ${error.message.includes(error.code) ? error.message : `${error.code} ${error.message}`}`,
      method,
      host,
      error.code,
      connected,
    );
  }
  if (error.res) {
    const status = error.res.statusCode ?? 0;
    return new XapiProtocolError(
      `XAPI ${method} on ${target} did not answer an XML-RPC response (HTTP ${status}): ${parseFailure(error.message)}`,
    );
  }
  return new XapiCallTransportError(
    `XAPI ${method} on ${target} failed: ${error.message}`,
    method,
    host,
    'UNKNOWN',
    connected,
  );
}

/**
 * The parser's complaint without the text it quotes ("Expected an integer but got '…'"): that text
 * is whatever the server sent, possibly huge, possibly an echo of the request (and so of the password).
 */
function parseFailure(message: string): string {
  const firstLine = message.split('\n')[0] ?? '';
  return firstLine.replace(/'[\s\S]*'/, '(value not shown)').slice(0, 200);
}

function decodeEnvelope(raw: unknown, method: string, host: string): unknown {
  if (!isRecord(raw))
    throw new XapiProtocolError(`XAPI ${method} on ${host}: the answer is not a XAPI envelope`);
  if (raw.Status === 'Success' && 'Value' in raw) return raw.Value;
  if (raw.Status === 'Failure') {
    const description = raw.ErrorDescription;
    if (
      Array.isArray(description) &&
      description.length > 0 &&
      description.every((d) => typeof d === 'string')
    ) {
      const [code, ...params] = description as string[];
      throw new XapiError(code as string, params, method);
    }
  }
  throw new XapiProtocolError(`XAPI ${method} on ${host}: the answer is not a XAPI envelope`);
}

function encodeParams(method: string, params: readonly unknown[]): unknown[] {
  return params.map((param, index) => encodeParam(param, `${method} parameter ${index + 1}`));
}

function encodeParam(value: unknown, where: string): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'number':
      // An integral number is an int64 for xapi, sent as a string; the rest are doubles.
      return Number.isInteger(value) ? int64(value) : value;
    case 'object':
      if (value === null) break;
      if (value instanceof xmlrpc.CustomType) return value;
      if (value instanceof Date && !Number.isNaN(value.getTime()))
        return typedValue('dateTime.iso8601', formatUtcDate(value));
      if (Array.isArray(value)) return value.map((item) => encodeParam(item, where));
      if (Object.getPrototypeOf(value) === Object.prototype) {
        return Object.fromEntries(
          Object.entries(value)
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => [k, encodeParam(v, where)]),
        );
      }
      break;
    default:
      break;
  }
  throw new XapiProtocolError(
    `XAPI ${where}: cannot send a ${value === null ? 'null' : typeof value} over XML-RPC`,
  );
}

function typedValue(tagName: string, raw: string): xmlrpc.CustomType {
  const value = new xmlrpc.CustomType(raw);
  value.tagName = tagName;
  return value;
}

function formatDoubleParam(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`not a finite number: ${n}`);
  return Number.isInteger(n) ? n.toFixed(1) : String(n);
}

/** xapi's own datetime format, always UTC with `Z` (the xmlrpc package would send local time without offset). */
function formatUtcDate(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${String(date.getUTCFullYear()).padStart(4, '0')}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}` +
    `T${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}Z`
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
