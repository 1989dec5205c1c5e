/**
 * Runs in Redis: one JSON document per run, indexes by time (all runs, per cluster), and flags for
 * abort and step-mode continue. State changes are compare-and-set in one Lua script, so concurrent
 * clicks on two Slack servers still produce exactly one approval.
 */
import type { Redis } from 'ioredis';
import {
  isBusyState,
  type RunRecord,
  type RunState,
  type RunStore,
  type TransitionResult,
} from './contracts.js';

/**
 * A run is a Redis hash: one field per record field, each value JSON-encoded, so a script can test
 * and set the state without decoding the rest. KEYS[1] run key; ARGV[1] JSON-encoded allowed
 * states joined by newlines, ARGV[2] JSON-encoded new state, ARGV[3..] field/value pairs.
 */
const TRANSITION = `
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return 0 end
local allowed = false
for state in string.gmatch(ARGV[1], '[^\\n]+') do
  if state == current then allowed = true end
end
if not allowed then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
`;

/** KEYS[1] run key; ARGV field/value pairs; only an existing run is updated. */
const UPDATE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
`;

export class RedisRunStore implements RunStore {
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {}

  async create(record: RunRecord): Promise<void> {
    const created = await this.redis.hsetnx(this.#key(record.runId), 'runId', JSON.stringify(record.runId));
    if (created !== 1) throw new Error(`run ${record.runId} already exists`);
    await this.redis.hset(this.#key(record.runId), Object.fromEntries(fieldPairs(record)));
    const score = Date.parse(record.createdAt);
    const multi = this.redis
      .multi()
      .zadd(`${this.prefix}:runs`, score, record.runId)
      .zadd(`${this.prefix}:runs:${record.cluster}`, score, record.runId);
    if (isBusyState(record.state)) multi.zadd(this.#busyKey(record.cluster), score, record.runId);
    await multi.exec();
  }

  async get(runId: string): Promise<RunRecord | undefined> {
    return decodeRun(await this.redis.hgetall(this.#key(runId)));
  }

  async update(
    runId: string,
    patch: Partial<Omit<RunRecord, 'runId' | 'state'>>,
  ): Promise<RunRecord | undefined> {
    const pairs = fieldPairs(patch).filter(([field]) => field !== 'state' && field !== 'runId');
    if (pairs.length > 0) await this.redis.eval(UPDATE, 1, this.#key(runId), ...pairs.flat());
    return this.get(runId);
  }

  async transition(
    runId: string,
    from: readonly RunState[],
    to: RunState,
    patch: Partial<Omit<RunRecord, 'runId' | 'state'>> = {},
  ): Promise<TransitionResult> {
    const pairs = fieldPairs(patch).filter(([field]) => field !== 'state' && field !== 'runId');
    const applied = (await this.redis.eval(
      TRANSITION,
      1,
      this.#key(runId),
      from.map((state) => JSON.stringify(state)).join('\n'),
      JSON.stringify(to),
      ...pairs.flat(),
    )) as number;
    const record = await this.get(runId);
    if (applied === 1 && record) {
      // The busy index follows the state; a run leaving it stops holding its cluster.
      if (isBusyState(to))
        await this.redis.zadd(this.#busyKey(record.cluster), Date.parse(record.createdAt), runId);
      else await this.redis.zrem(this.#busyKey(record.cluster), runId);
    }
    return applied === 1 && record ? { ok: true, record } : { ok: false, record };
  }

  async requestAbort(runId: string, by: string): Promise<void> {
    await this.redis.set(`${this.#key(runId)}:abort`, by);
    await this.update(runId, { abortRequestedBy: by });
  }

  async isAbortRequested(runId: string): Promise<boolean> {
    return (await this.redis.exists(`${this.#key(runId)}:abort`)) === 1;
  }

  async grantContinue(runId: string, by: string): Promise<void> {
    await this.redis.set(`${this.#key(runId)}:continue`, by);
  }

  async takeContinue(runId: string): Promise<boolean> {
    return (await this.redis.del(`${this.#key(runId)}:continue`)) === 1;
  }

  async listRecent(options: { cluster?: string; limit: number }): Promise<RunRecord[]> {
    const index = options.cluster ? `${this.prefix}:runs:${options.cluster}` : `${this.prefix}:runs`;
    const ids = await this.redis.zrevrange(index, 0, Math.max(0, options.limit - 1));
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.#key(id));
    const answers = (await pipeline.exec()) ?? [];
    return answers
      .map(([, fields]) => decodeRun(fields as Record<string, string>))
      .filter((run): run is RunRecord => run !== undefined);
  }

  /** The states of the newest `limit` runs, one field each (for metrics: no plans are read). */
  async statesOfRecent(limit: number): Promise<RunState[]> {
    const ids = await this.redis.zrevrange(`${this.prefix}:runs`, 0, Math.max(0, limit - 1));
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.#key(id), 'state');
    const answers = (await pipeline.exec()) ?? [];
    return answers
      .map(([, state]) => (typeof state === 'string' ? (JSON.parse(state) as RunState) : undefined))
      .filter((state): state is RunState => state !== undefined);
  }

  async activeRun(cluster: string): Promise<RunRecord | undefined> {
    // Planning and awaiting approval hold the cluster too: a second request must wait for them.
    return (await this.busyRuns(cluster))[0];
  }

  async busyRuns(cluster: string): Promise<RunRecord[]> {
    const ids = await this.redis.zrange(this.#busyKey(cluster), '0', '-1');
    const runs: RunRecord[] = [];
    for (const id of ids) {
      const run = await this.get(id);
      if (run && isBusyState(run.state)) runs.push(run);
    }
    return runs;
  }

  #busyKey(cluster: string): string {
    return `${this.prefix}:busy:${cluster}`;
  }

  #key(runId: string): string {
    return `${this.prefix}:run:${runId}`;
  }
}

function fieldPairs(record: object): Array<[string, string]> {
  return Object.entries(record)
    .filter(([, value]) => value !== undefined)
    .map(([field, value]) => [field, JSON.stringify(value)]);
}

function decodeRun(fields: Record<string, string>): RunRecord | undefined {
  if (!fields.runId || !fields.state) return undefined;
  return Object.fromEntries(
    Object.entries(fields).map(([field, value]) => [field, JSON.parse(value)]),
  ) as unknown as RunRecord;
}
