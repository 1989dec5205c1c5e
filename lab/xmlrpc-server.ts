/**
 * A generic XML-RPC server that answers exactly like xapi (ocaml-rpc): bare `<value>` strings, the
 * `{Status, Value | ErrorDescription}` envelope, HTTP 500 with an HTML page for anything that is not a
 * well-formed `methodCall`. The lab's simulated hosts put their behaviour in the handler.
 */
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';

/** Throw this from a handler to answer {Status:"Failure", ErrorDescription:[code, ...params]}. */
export class XapiFault extends Error {
  constructor(readonly errorDescription: string[]) {
    super(errorDescription.join(' '));
    this.name = 'XapiFault';
  }
}

export type XmlRpcHandler = (
  method: string,
  params: unknown[],
  request: { remoteAddress: string },
) => unknown;

export interface LabXmlRpcServer {
  readonly address: string;
  readonly port: number;
  running(): boolean;
  /** Listens (again) on the same address and port. */
  start(): Promise<void>;
  /** Stops listening and destroys open connections, so clients see refused / reset. */
  stop(): Promise<void>;
}

export interface LabXmlRpcServerOptions {
  address: string;
  /** 0 picks a free port on the first start; later starts reuse it. */
  port: number;
  handler: XmlRpcHandler;
  tls?: { key: string; cert: string };
}

interface MethodCallDeserializer {
  deserializeMethodCall(
    stream: Readable,
    callback: (error: Error | null | undefined, method?: string, params?: unknown[]) => void,
  ): void;
}

// The package ships no types for its deserializer module; this is the one function used.
const Deserializer = createRequire(import.meta.url)(
  'xmlrpc/lib/deserializer',
) as new () => MethodCallDeserializer;

const MAX_BODY_BYTES = 16 * 1024 * 1024;

export function createLabXmlRpcServer(options: LabXmlRpcServerOptions): LabXmlRpcServer {
  const sockets = new Set<Socket>();
  let port = options.port;
  let server: http.Server | undefined;

  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    void answer(req, res, options.handler);
  };

  const createServer = (): http.Server => {
    const created = options.tls
      ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, listener)
      : http.createServer(listener);
    created.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    // A client that disconnects mid-request must not crash the lab.
    created.on('clientError', (_error, socket) => socket.destroy());
    return created;
  };

  return {
    address: options.address,
    get port() {
      return port;
    },
    running: () => server?.listening ?? false,
    async start() {
      if (server?.listening) return;
      const created = createServer();
      await new Promise<void>((resolve, reject) => {
        created.once('error', reject);
        created.listen({ host: options.address, port }, () => {
          created.off('error', reject);
          resolve();
        });
      });
      const bound = created.address();
      if (bound && typeof bound === 'object') port = bound.port;
      server = created;
    },
    async stop() {
      const current = server;
      server = undefined;
      if (!current) return;
      const closed = new Promise<void>((resolve) => current.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await closed;
    },
  };
}

async function answer(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  handler: XmlRpcHandler,
): Promise<void> {
  try {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/' && path !== '/RPC2') {
      sendHtml(res, 404, 'HTTP 404 file not found', `No handler for ${escapeXml(path ?? '')}`);
      return;
    }
    if (req.method !== 'POST') {
      sendHtml(
        res,
        500,
        'HTTP 500 internal server error',
        `Unsupported method ${escapeXml(req.method ?? '')}`,
      );
      return;
    }
    const body = await readBody(req);
    let call: { method: string; params: unknown[] };
    try {
      call = await parseMethodCall(body);
    } catch (error) {
      sendHtml(
        res,
        500,
        'HTTP 500 internal server error',
        `Xmlrpc.Parse_error(${escapeXml(messageOf(error))})`,
      );
      return;
    }
    const remoteAddress = req.socket.remoteAddress ?? '';
    const xml = await envelope(() => handler(call.method, call.params, { remoteAddress }));
    if (res.destroyed) return;
    res.writeHead(200, { 'Content-Type': 'text/xml', 'Content-Length': Buffer.byteLength(xml) });
    res.end(xml);
  } catch (error) {
    if (!res.headersSent && !res.destroyed) {
      sendHtml(res, 500, 'HTTP 500 internal server error', escapeXml(messageOf(error)));
    } else {
      res.destroy();
    }
  }
}

async function envelope(run: () => unknown): Promise<string> {
  let members: string;
  try {
    const value = await run();
    members = member('Status', 'Success') + memberFragment('Value', xmlRpcValueFragment(value));
  } catch (error) {
    const description =
      error instanceof XapiFault ? error.errorDescription : ['INTERNAL_ERROR', messageOf(error)];
    members =
      member('Status', 'Failure') + memberFragment('ErrorDescription', xmlRpcValueFragment(description));
  }
  return `<?xml version="1.0"?><methodResponse><params><param><value><struct>${members}</struct></value></param></params></methodResponse>`;
}

function member(name: string, value: string): string {
  return memberFragment(name, `<value>${escapeXml(value)}</value>`);
}

function memberFragment(name: string, fragment: string): string {
  return `<member><name>${escapeXml(name)}</name>${fragment}</member>`;
}

/** The XML-RPC fragment of one value, e.g. `<value>OpaqueRef:…</value>`; used for task.result. */
export function xmlRpcValueFragment(value: unknown): string {
  if (value === undefined || value === null) return '<value></value>';
  switch (typeof value) {
    case 'string':
      return `<value>${escapeXml(value)}</value>`;
    case 'bigint':
      // xapi sends int64 bare, like strings.
      return `<value>${value.toString()}</value>`;
    case 'boolean':
      return `<value><boolean>${value ? '1' : '0'}</boolean></value>`;
    case 'number':
      return `<value><double>${formatDouble(value)}</double></value>`;
    case 'object':
      if (value instanceof Date)
        return `<value><dateTime.iso8601>${formatDate(value)}</dateTime.iso8601></value>`;
      if (Array.isArray(value))
        return `<value><array><data>${value.map(xmlRpcValueFragment).join('')}</data></array></value>`;
      return structFragment(value);
    default:
      throw new TypeError(`cannot encode a ${typeof value} as XML-RPC`);
  }
}

function structFragment(value: object): string {
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) {
    throw new TypeError(`cannot encode a ${value.constructor?.name ?? 'non-plain object'} as XML-RPC`);
  }
  const members = Object.entries(value)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => memberFragment(k, xmlRpcValueFragment(v)))
    .join('');
  return `<value><struct>${members}</struct></value>`;
}

/** Like C's printf("%.16g"), which ocaml-rpc uses for doubles. */
function formatDouble(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  if (value === 0) return Object.is(value, -0) ? '-0' : '0';
  const [mantissa = '0', exponentText = '0'] = value.toExponential(15).split('e');
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 16) {
    const sign = exponent < 0 ? '-' : '+';
    return `${stripZeros(mantissa)}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  return stripZeros(value.toFixed(15 - exponent));
}

function stripZeros(decimal: string): string {
  return decimal.includes('.') ? decimal.replace(/0+$/, '').replace(/\.$/, '') : decimal;
}

/** xapi's datetime format: basic date, extended time, `Z` for UTC. */
function formatDate(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${String(date.getUTCFullYear()).padStart(4, '0')}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}` +
    `T${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}Z`
  );
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly the characters ocaml-rpc drops.
const DROPPED_CONTROL_CHARACTERS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g;

/** ocaml-rpc escapes `<>&"` and drops control characters other than TAB, LF and CR. */
function escapeXml(text: string): string {
  return text.replace(DROPPED_CONTROL_CHARACTERS, '').replace(/[<>&"]/g, (c) => ENTITIES[c] ?? c);
}

const ENTITIES: Record<string, string> = { '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' };

function sendHtml(res: http.ServerResponse, status: number, title: string, detail: string): void {
  const html = `<html><body><h1>${title}</h1>An unexpected error occurred; please wait a while and try again.<h1> Additional information </h1>${detail}</body></html>`;
  res.writeHead(status, { 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(html) });
  res.end(html);
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

function parseMethodCall(body: Buffer): Promise<{ method: string; params: unknown[] }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    new Deserializer().deserializeMethodCall(
      Readable.from([body], { objectMode: false }),
      (error, method, params) => {
        if (settled) return;
        settled = true;
        if (error || method === undefined) reject(error ?? new Error('no method name'));
        else resolve({ method, params: params ?? [] });
      },
    );
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
