/**
 * The durable audit record, outside Slack and outside BullMQ's job retention: a Redis stream of
 * every request, approval, refusal, click and step, and one stream per run for quick export.
 */
import type { Redis } from 'ioredis';
import type { AuditEntry, AuditLog } from '../queue/contracts.js';

/** Enough for years of runs; trimming is approximate (cheap) and only drops the oldest entries. */
const MAX_ENTRIES = 1_000_000;

export class RedisAuditLog implements AuditLog {
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {}

  async append(entry: Omit<AuditEntry, 'at'>): Promise<void> {
    const full: AuditEntry = { at: new Date().toISOString(), ...entry };
    const encoded = JSON.stringify(full);
    const pipeline = this.redis.pipeline();
    pipeline.xadd(`${this.prefix}:audit`, 'MAXLEN', '~', String(MAX_ENTRIES), '*', 'entry', encoded);
    if (entry.runId) pipeline.xadd(`${this.prefix}:audit:run:${entry.runId}`, '*', 'entry', encoded);
    await pipeline.exec();
  }

  async list(options: { runId?: string; limit?: number } = {}): Promise<AuditEntry[]> {
    const key = options.runId ? `${this.prefix}:audit:run:${options.runId}` : `${this.prefix}:audit`;
    const rows = options.limit
      ? (await this.redis.xrevrange(key, '+', '-', 'COUNT', options.limit)).reverse()
      : await this.redis.xrange(key, '-', '+');
    return rows.map(([, fields]) => JSON.parse(fields[1] ?? '{}') as AuditEntry);
  }
}
