/**
 * The only path to Slack's Web API for run threads. One queue per channel, sent in order:
 * calls spaced at least `minIntervalMs` apart (Slack allows about one post per second per channel),
 * queued updates of the same message coalesced (only the latest content is sent), 429s honoured
 * with their Retry-After, 5xx / network errors / timeouts retried with back-off for `retryMs`.
 * During a Slack outage updates queue up and catch up afterwards; the reboot never waits for Slack
 * and nothing here throws to its caller.
 */
import type { KnownBlock } from '@slack/types';
import {
  type ChatPostMessageArguments,
  type ChatUpdateArguments,
  ErrorCode,
  LogLevel,
  type Logger as SlackLogger,
  WebClient,
} from '@slack/web-api';
import type { BotConfig } from '../bot-config.js';
import { describeError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';

export interface MessageContent {
  text: string;
  blocks: KnownBlock[];
}

/** The part of `WebClient` the writer uses. */
export interface ChatApi {
  chat: {
    postMessage(args: {
      channel: string;
      text: string;
      blocks: KnownBlock[];
      thread_ts?: string;
      reply_broadcast?: boolean;
      unfurl_links?: boolean;
    }): Promise<{ ts?: string }>;
    update(args: { channel: string; ts: string; text: string; blocks: KnownBlock[] }): Promise<unknown>;
  };
}

export interface MessageRef {
  /** Resolves with the message's ts once posted; undefined if it could not be posted. */
  readonly ts: Promise<string | undefined>;
  /** Slack's error (e.g. `not_in_channel`) once `ts` resolved undefined. */
  readonly error: string | undefined;
  /** Replaces the message's content; of several updates still queued only the latest is sent. */
  update(content: MessageContent): void;
}

export interface SlackWriterOptions {
  /** A `WebClient` (see `createSlackWebClient`) or anything with the same two chat methods. */
  api: ChatApi | WebClient;
  /** How long one call keeps being retried (BotConfig.slack.retryMs) before it is dropped. */
  retryMs: number;
  minIntervalMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  logger?: Logger;
  /** Told the outcome of every call (metrics, health). */
  observer?: SlackCallObserver;
}

export type SlackCallOutcome = { ok: true } | { ok: false; error: string; retrying: boolean };

/** Sees every Web API call the writer makes; must not throw. */
export interface SlackCallObserver {
  callEnded(call: 'post' | 'update', outcome: SlackCallOutcome): void;
}

export interface WriterStats {
  sent: number;
  retried: number;
  dropped: number;
}

export const MIN_INTERVAL_MS = 1100;
export const SLACK_REQUEST_TIMEOUT_MS = 10_000;

/** Platform errors (`ok: false`) that mean "try again", unlike `not_in_channel` or `invalid_blocks`. */
const RETRYABLE_PLATFORM_ERRORS = new Set([
  'ratelimited',
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
]);

export class SlackWriter {
  readonly #channels = new Map<string, ChannelWriter>();
  readonly #closed = new AbortController();
  readonly stats: WriterStats = { sent: 0, retried: 0, dropped: 0 };

  readonly #options: ChannelWriterOptions;

  constructor(options: SlackWriterOptions) {
    this.#options = {
      ...options,
      api: options.api instanceof WebClient ? chatApiOf(options.api) : options.api,
    };
  }

  channel(channelId: string): ChannelWriter {
    let writer = this.#channels.get(channelId);
    if (!writer) {
      writer = new ChannelWriter(channelId, this.#options, this.stats, this.#closed.signal);
      this.#channels.set(channelId, writer);
    }
    return writer;
  }

  /** Resolves when every channel's queue is empty, or after `timeoutMs`; never rejects. */
  async flush(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.all([...this.#channels.values()].map((c) => c.idle())), timeout]);
    clearTimeout(timer);
  }

  /** Drops whatever is still queued (each pending post resolves undefined) and stops all waits. */
  close(): void {
    this.#closed.abort();
    for (const channel of this.#channels.values()) channel.dropAll('writer closed');
  }
}

type ChannelWriterOptions = Omit<SlackWriterOptions, 'api'> & { api: ChatApi };

type Op =
  | {
      kind: 'post';
      ref: Ref;
      content: MessageContent;
      threadTs?: string;
      broadcast?: boolean;
      deadline: number;
    }
  | { kind: 'update'; ref: Ref; content: MessageContent; deadline: number };

class Ref implements MessageRef {
  readonly ts: Promise<string | undefined>;
  error: string | undefined;
  tsValue: string | undefined;
  failed = false;
  /** An update queued and not yet taken for sending: a later update replaces its content. */
  queuedUpdate: Extract<Op, { kind: 'update' }> | undefined;
  #resolve!: (ts: string | undefined) => void;

  constructor(
    private readonly owner: ChannelWriter,
    ts?: string,
  ) {
    this.ts = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    if (ts !== undefined) this.posted(ts);
  }

  posted(ts: string): void {
    this.tsValue = ts;
    this.#resolve(ts);
  }

  fail(error: string): void {
    this.failed = true;
    this.error = error;
    this.#resolve(undefined);
  }

  update(content: MessageContent): void {
    this.owner.queueUpdate(this, content);
  }
}

export class ChannelWriter {
  readonly #queue: Op[] = [];
  #pumping = false;
  #lastCallAt = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(
    readonly channelId: string,
    private readonly options: ChannelWriterOptions,
    private readonly stats: WriterStats,
    private readonly closed: AbortSignal,
  ) {}

  /** Posts a new message (a thread reply when `threadTs` is given). */
  post(content: MessageContent, options: { threadTs?: string; broadcast?: boolean } = {}): MessageRef {
    const ref = new Ref(this);
    if (this.closed.aborted) {
      ref.fail('writer closed');
      return ref;
    }
    this.#queue.push({ kind: 'post', ref, content, ...options, deadline: Date.now() + this.options.retryMs });
    this.#pump();
    return ref;
  }

  /** A message posted earlier (e.g. the run's root message), to update. */
  message(ts: string): MessageRef {
    return new Ref(this, ts);
  }

  /** Calls queued or in flight. */
  get pending(): number {
    return this.#queue.length;
  }

  idle(): Promise<void> {
    if (!this.#pumping && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  queueUpdate(ref: Ref, content: MessageContent): void {
    if (ref.failed || this.closed.aborted) return;
    if (ref.queuedUpdate) {
      ref.queuedUpdate.content = content;
      return;
    }
    const op = { kind: 'update' as const, ref, content, deadline: Date.now() + this.options.retryMs };
    ref.queuedUpdate = op;
    this.#queue.push(op);
    this.#pump();
  }

  dropAll(reason: string): void {
    for (const op of this.#queue.splice(0)) this.#drop(op, reason);
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      let attempt = 0;
      while (this.#queue.length > 0 && !this.closed.aborted) {
        const op = this.#queue[0] as Op;
        await this.#sleep(this.#lastCallAt + (this.options.minIntervalMs ?? MIN_INTERVAL_MS) - Date.now());
        if (this.closed.aborted) break;
        if (op.kind === 'update') {
          // From here on a newer update must queue behind this one, not change what is being sent.
          if (op.ref.queuedUpdate === op) op.ref.queuedUpdate = undefined;
          if (op.ref.failed) {
            this.#queue.shift();
            continue;
          }
        }
        this.#lastCallAt = Date.now();
        const result = await this.#call(op);
        if (result.ok) {
          this.#queue.shift();
          this.stats.sent += 1;
          this.#observe(op.kind, { ok: true });
          attempt = 0;
          continue;
        }
        const delay = result.retryAfterMs ?? this.#backoff(attempt);
        if (!result.retryable || Date.now() + delay > op.deadline) {
          this.#observe(op.kind, { ok: false, error: result.error, retrying: false });
          this.#queue.shift();
          this.#drop(op, result.error);
          attempt = 0;
          continue;
        }
        attempt += 1;
        this.stats.retried += 1;
        this.#observe(op.kind, { ok: false, error: result.error, retrying: true });
        this.options.logger?.info(
          { channel: this.channelId, call: op.kind, error: result.error, retryInMs: delay },
          'Slack call failed; retrying',
        );
        if (op.kind === 'update' && op.ref.queuedUpdate) {
          // A newer update was queued meanwhile: send that content instead, in this op's place.
          op.content = op.ref.queuedUpdate.content;
          this.#queue.splice(this.#queue.indexOf(op.ref.queuedUpdate), 1);
          op.ref.queuedUpdate = undefined;
        }
        await this.#sleep(delay);
      }
    } finally {
      this.#pumping = false;
      if (this.#queue.length > 0 && !this.closed.aborted) {
        void this.#pump();
      } else {
        for (const resolve of this.#idleWaiters.splice(0)) resolve();
      }
    }
  }

  async #call(
    op: Op,
  ): Promise<{ ok: true } | { ok: false; retryable: boolean; error: string; retryAfterMs?: number }> {
    try {
      if (op.kind === 'post') {
        const answer = await this.options.api.chat.postMessage({
          channel: this.channelId,
          text: op.content.text,
          blocks: op.content.blocks,
          unfurl_links: false,
          ...(op.threadTs ? { thread_ts: op.threadTs } : {}),
          ...(op.broadcast && op.threadTs ? { reply_broadcast: true } : {}),
        });
        if (!answer.ts) return { ok: false, retryable: false, error: 'no ts in the answer' };
        op.ref.posted(answer.ts);
      } else {
        await this.options.api.chat.update({
          channel: this.channelId,
          ts: op.ref.tsValue as string,
          text: op.content.text,
          blocks: op.content.blocks,
        });
      }
      return { ok: true };
    } catch (error) {
      return classify(error);
    }
  }

  #observe(call: Op['kind'], outcome: SlackCallOutcome): void {
    try {
      this.options.observer?.callEnded(call, outcome);
    } catch (error) {
      this.options.logger?.warn({ err: describeError(error) }, 'Slack call observer failed');
    }
  }

  #backoff(attempt: number): number {
    const initial = this.options.initialBackoffMs ?? 500;
    const max = this.options.maxBackoffMs ?? 30_000;
    const base = Math.min(max, initial * 2 ** attempt);
    return Math.round(base * (0.9 + Math.random() * 0.2));
  }

  #drop(op: Op, error: string): void {
    this.stats.dropped += 1;
    if (op.kind === 'post') op.ref.fail(error);
    else if (op.ref.queuedUpdate === op) op.ref.queuedUpdate = undefined;
    this.options.logger?.warn({ channel: this.channelId, call: op.kind, error }, 'Slack call given up');
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.closed.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const signal = this.closed;
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

function classify(error: unknown): { ok: false; retryable: boolean; error: string; retryAfterMs?: number } {
  const coded = error as {
    code?: string;
    retryAfter?: number;
    statusCode?: number;
    data?: { error?: string };
  };
  switch (coded?.code) {
    case ErrorCode.RateLimitedError:
      return {
        ok: false,
        retryable: true,
        error: 'HTTP 429',
        retryAfterMs: Math.max(1, coded.retryAfter ?? 1) * 1000,
      };
    case ErrorCode.HTTPError: {
      const status = coded.statusCode ?? 0;
      return { ok: false, retryable: status >= 500 || status === 408, error: `HTTP ${status}` };
    }
    case ErrorCode.RequestError:
      return { ok: false, retryable: true, error: describeError(error) };
    case ErrorCode.PlatformError: {
      const code = coded.data?.error ?? 'unknown_error';
      return { ok: false, retryable: RETRYABLE_PLATFORM_ERRORS.has(code), error: code };
    }
    default:
      return { ok: false, retryable: false, error: describeError(error) };
  }
}

/** The writer's view of a real `WebClient`. */
export function chatApiOf(client: WebClient): ChatApi {
  return {
    chat: {
      postMessage: (args) => client.chat.postMessage(args as ChatPostMessageArguments),
      update: (args) => client.chat.update(args as ChatUpdateArguments),
    },
  };
}

/**
 * A Web API client that leaves retries to the writer: no retry of its own, 429s rejected at once
 * (instead of pausing every call of the client), and a request timeout so nothing hangs.
 */
export function createSlackWebClient(
  slack: Pick<BotConfig['slack'], 'botToken' | 'apiUrl'>,
  options: { timeoutMs?: number; logger?: Logger } = {},
): WebClient {
  return new WebClient(slack.botToken, {
    ...(slack.apiUrl ? { slackApiUrl: slack.apiUrl } : {}),
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: options.timeoutMs ?? SLACK_REQUEST_TIMEOUT_MS,
    logger: slackLoggerFrom(options.logger ?? silentLogger),
  });
}

/**
 * Slack's libraries log through this. Their warnings (one per failed HTTP call) are routine
 * during an outage and the writer reports what matters, so they are logged one level lower.
 */
export function slackLoggerFrom(logger: Logger): SlackLogger {
  const text = (parts: unknown[]) =>
    parts.map((p) => (typeof p === 'string' ? p : describeError(p))).join(' ');
  let name = 'slack';
  return {
    debug: (...msg) => logger.debug({ lib: name }, text(msg)),
    info: (...msg) => logger.debug({ lib: name }, text(msg)),
    warn: (...msg) => logger.info({ lib: name }, text(msg)),
    error: (...msg) => logger.error({ lib: name }, text(msg)),
    setLevel: () => {},
    getLevel: () => {
      const level = logger.level;
      if (level === 'debug' || level === 'trace') return LogLevel.DEBUG;
      if (level === 'info') return LogLevel.INFO;
      if (level === 'warn') return LogLevel.WARN;
      return LogLevel.ERROR;
    },
    setName: (newName) => {
      name = newName;
    },
  };
}
