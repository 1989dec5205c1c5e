/**
 * Gauges read from Redis at scrape time: runs by state and the queue's job counts are facts of the
 * whole deployment, not of this process, so every process reports the same figures (aggregate
 * them with `max`, not `sum`). A scrape never hangs on Redis and never fails because of it: the
 * figures are left out and `crb_redis_up` says 0.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Gauge } from 'prom-client';
import { withTimeout } from '../engine/waits.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { RUN_STATES, type RunState } from '../queue/contracts.js';
import { RUN_QUEUE_NAME } from '../queue/job-schema.js';
import type { Metrics } from './registry.js';

/** Runs by state are counted among this many of the newest runs: active runs are always among them. */
export const RUN_STATE_SCAN_LIMIT = 1000;
const SCRAPE_REDIS_TIMEOUT_MS = 3_000;
const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'] as const;

export interface RedisGaugeSources {
  /** The client connection (fails fast while Redis is down). */
  redis: Redis;
  prefix: string;
  runStates: { statesOfRecent(limit: number): Promise<RunState[]> };
  logger: Logger;
}

export interface RedisGauges {
  close(): Promise<void>;
}

export function registerRedisGauges(metrics: Metrics, sources: RedisGaugeSources): RedisGauges {
  const { redis, prefix, runStates, logger } = sources;
  const registers = [metrics.registry];
  const queue = new Queue(RUN_QUEUE_NAME, { connection: redis, prefix });
  // Without a listener an 'error' event would crash the process; the scrape reports failures.
  queue.on('error', () => undefined);
  const read = async <T>(what: string, call: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await withTimeout(call(), SCRAPE_REDIS_TIMEOUT_MS, what);
    } catch (error) {
      logger.debug({ err: describeError(error) }, `metrics: ${what} failed`);
      return undefined;
    }
  };

  new Gauge({
    name: 'crb_redis_up',
    help: 'Whether Redis answered a PING during this scrape (1) or not (0)',
    registers,
    async collect() {
      this.set((await read('pinging Redis', () => redis.ping())) === 'PONG' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'crb_runs',
    help: `Runs by state, among the newest ${RUN_STATE_SCAN_LIMIT} (every process reports the same: use max)`,
    labelNames: ['state'],
    registers,
    async collect() {
      this.reset();
      const states = await read('reading run states', () => runStates.statesOfRecent(RUN_STATE_SCAN_LIMIT));
      if (!states) return;
      for (const state of RUN_STATES) this.set({ state }, 0);
      for (const state of states) this.inc({ state });
    },
  });
  new Gauge({
    name: 'crb_queue_jobs',
    help: "The run queue's jobs by BullMQ state; waiting + delayed + prioritized is the queue depth",
    labelNames: ['state'],
    registers,
    async collect() {
      this.reset();
      const counts = await read('reading queue counts', () => queue.getJobCounts(...JOB_STATES));
      if (!counts) return;
      for (const state of JOB_STATES) this.set({ state }, counts[state] ?? 0);
    },
  });
  return { close: () => queue.close() };
}
