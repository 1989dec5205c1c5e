/**
 * A local stand-in for Slack's Web API (`/api/<method>`) and for `response_url`s (`/respond/<id>`),
 * over a real socket. It answers like Slack (`ok`, `ts`, `channel`, permalinks,
 * `usergroups.users.list`), keeps the messages it was sent (updates apply to them), records every
 * call with its decoded body, and can be told to answer 429 with Retry-After, 5xx, a platform
 * error, or nothing at all (a hang) for given methods.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedCall {
  method: string;
  body: Record<string, unknown>;
  /** The bearer token sent, if any. */
  token?: string;
  /** Milliseconds since the epoch when the request arrived. */
  at: number;
  /** What the server answered: 'ok', an HTTP status, a platform error, or 'hang'. */
  answer: string;
}

export interface RecordedResponse {
  id: string;
  body: Record<string, unknown>;
  at: number;
}

export type Fault =
  | { status: 429; retryAfterSeconds: number }
  | { status: 500 | 502 | 503 }
  | { error: string }
  | { hang: true };

export interface StoredMessage {
  channel: string;
  ts: string;
  text: string;
  blocks: unknown[];
  threadTs?: string;
  updates: number;
}

export interface SlackApiServer {
  /** For `SLACK_API_URL` / `slackApiUrl`: ends in `/api/`. */
  readonly apiUrl: string;
  readonly baseUrl: string;
  /** A `response_url` served by this server. */
  responseUrl(id?: string): string;
  calls(method?: string): RecordedCall[];
  responses(id?: string): RecordedResponse[];
  /** The message as it is now (after updates), by ts. */
  message(ts: string): StoredMessage | undefined;
  /** Top-level messages and thread replies, in posting order. */
  messages(filter?: { channel?: string; threadTs?: string }): StoredMessage[];
  /** The next `times` calls of `method` get `fault`. */
  fail(method: string, fault: Fault, times?: number): void;
  setUsergroup(id: string, users: string[]): void;
  /** Resolves once `predicate` holds for the recorded calls (checked on every call); rejects after `timeoutMs`. */
  waitFor(predicate: (server: SlackApiServer) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startSlackApiServer(
  options: { token?: string; host?: string } = {},
): Promise<SlackApiServer> {
  const calls: RecordedCall[] = [];
  const responses: RecordedResponse[] = [];
  const messages = new Map<string, StoredMessage>();
  const order: string[] = [];
  const faults = new Map<string, Array<{ fault: Fault; left: number }>>();
  const usergroups = new Map<string, string[]>();
  const changes = new EventEmitter();
  changes.setMaxListeners(100);
  let seq = 0;
  const nextTs = () => {
    seq += 1;
    return `${1_700_000_000 + seq}.${String(seq).padStart(6, '0')}`;
  };

  const takeFault = (method: string): Fault | undefined => {
    const queue = faults.get(method);
    const head = queue?.[0];
    if (!queue || !head) return undefined;
    head.left -= 1;
    if (head.left <= 0) queue.shift();
    return head.fault;
  };

  const answerMethod = (method: string, body: Record<string, unknown>): Record<string, unknown> => {
    const channel = String(body.channel ?? '');
    switch (method) {
      case 'auth.test':
        return {
          ok: true,
          user_id: 'UBOT',
          bot_id: 'BBOT',
          team_id: 'T1',
          team: 'lab',
          url: 'https://lab.slack.com/',
        };
      case 'chat.postMessage': {
        if (!channel) return { ok: false, error: 'channel_not_found' };
        const ts = nextTs();
        const message: StoredMessage = {
          channel,
          ts,
          text: String(body.text ?? ''),
          blocks: (body.blocks as unknown[]) ?? [],
          ...(body.thread_ts ? { threadTs: String(body.thread_ts) } : {}),
          updates: 0,
        };
        messages.set(ts, message);
        order.push(ts);
        return { ok: true, channel, ts, message: { type: 'message', text: message.text, ts } };
      }
      case 'chat.update': {
        const message = messages.get(String(body.ts ?? ''));
        if (!message || message.channel !== channel) return { ok: false, error: 'message_not_found' };
        message.text = String(body.text ?? message.text);
        message.blocks = (body.blocks as unknown[]) ?? message.blocks;
        message.updates += 1;
        return { ok: true, channel, ts: message.ts, text: message.text };
      }
      case 'chat.getPermalink': {
        const ts = String(body.message_ts ?? '');
        if (!messages.has(ts)) return { ok: false, error: 'message_not_found' };
        return {
          ok: true,
          channel,
          permalink: `https://lab.slack.com/archives/${channel}/p${ts.replace('.', '')}`,
        };
      }
      case 'chat.postEphemeral':
        return { ok: true, message_ts: nextTs() };
      case 'usergroups.users.list': {
        const users = usergroups.get(String(body.usergroup ?? ''));
        return users ? { ok: true, users } : { ok: false, error: 'no_such_subteam' };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  };

  const server: Server = createServer((request, response) => {
    void handle(request, response);
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const raw = await readBody(request);
    const url = new URL(request.url ?? '/', 'http://localhost');
    const body = decodeBody(raw, request.headers['content-type']);
    const at = Date.now();
    const respondMatch = /^\/respond\/([^/]+)$/.exec(url.pathname);
    if (respondMatch) {
      responses.push({ id: respondMatch[1] as string, body, at });
      changes.emit('change');
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end('ok');
      return;
    }
    const apiMatch = /^\/api\/([A-Za-z.]+)$/.exec(url.pathname);
    if (!apiMatch) {
      response.writeHead(404);
      response.end();
      return;
    }
    const method = apiMatch[1] as string;
    const token =
      /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? (body.token as string | undefined);
    const record = (answer: string) => {
      calls.push({ method, body, ...(token ? { token } : {}), at, answer });
      changes.emit('change');
    };
    const fault = takeFault(method);
    if (fault && 'hang' in fault) {
      record('hang');
      return; // never answered; closed with the server
    }
    if (fault && 'status' in fault) {
      record(`HTTP ${fault.status}`);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (fault.status === 429) headers['retry-after'] = String(fault.retryAfterSeconds);
      response.writeHead(fault.status, headers);
      response.end(
        JSON.stringify({ ok: false, error: fault.status === 429 ? 'ratelimited' : 'internal_error' }),
      );
      return;
    }
    let answer: Record<string, unknown>;
    if (fault && 'error' in fault) answer = { ok: false, error: fault.error };
    else if (options.token && token !== options.token) answer = { ok: false, error: 'invalid_auth' };
    else answer = answerMethod(method, body);
    record(answer.ok ? 'ok' : String(answer.error));
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    response.end(JSON.stringify(answer));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  const baseUrl = `http://${address}:${port}`;

  const api: SlackApiServer = {
    apiUrl: `${baseUrl}/api/`,
    baseUrl,
    responseUrl: (id = String(Math.random()).slice(2)) => `${baseUrl}/respond/${id}`,
    calls: (method) => calls.filter((call) => method === undefined || call.method === method),
    responses: (id) => responses.filter((r) => id === undefined || r.id === id),
    message: (ts) => messages.get(ts),
    messages: (filter = {}) =>
      order
        .map((ts) => messages.get(ts) as StoredMessage)
        .filter(
          (m) =>
            (filter.channel === undefined || m.channel === filter.channel) &&
            (filter.threadTs === undefined || m.threadTs === filter.threadTs),
        ),
    fail: (method, fault, times = 1) => {
      const queue = faults.get(method) ?? [];
      queue.push({ fault, left: times });
      faults.set(method, queue);
    },
    setUsergroup: (id, users) => {
      usergroups.set(id, users);
    },
    waitFor: (predicate, timeoutMs = 10_000) =>
      new Promise<void>((resolve, reject) => {
        if (predicate(api)) return resolve();
        const check = () => {
          if (!predicate(api)) return;
          cleanup();
          resolve();
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`Slack API server: condition not met within ${timeoutMs} ms`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          changes.off('change', check);
        };
        changes.on('change', check);
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return api;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

/** Form bodies as the Web API client sends them (nested values JSON-encoded), or JSON (response_url). */
function decodeBody(raw: string, contentType: string | undefined): Record<string, unknown> {
  if (!raw) return {};
  if (contentType?.startsWith('application/json')) {
    try {
      return JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return { raw };
    }
  }
  const body: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(raw)) {
    body[key] = /^[[{]/.test(value) ? tryJson(value) : value;
  }
  return body;
}

function tryJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}
