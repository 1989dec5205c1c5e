/**
 * One queue worker in its own process, for tests that kill it (`node --import tsx
 * test/support/worker-process.ts`). Configured from the environment:
 *   WORKER_REDIS_URL, WORKER_PREFIX, WORKER_ID, WORKER_LOCK_TTL_MS, WORKER_STALLED_INTERVAL_MS,
 *   WORKER_ENGINE_ENV (JSON: the lab's engine environment with the fast timings).
 * Writes one JSON line per thing it was told to report: {"kind":"ready"}, {"kind":"started"},
 * {"kind":"event","event":{…}}, {"kind":"finished","outcome":{…}}. SIGTERM closes it gracefully.
 */
import { RedisAuditLog } from '../../src/audit/audit-log.js';
import { silentLogger } from '../../src/log.js';
import type { RunReporter } from '../../src/queue/contracts.js';
import { createRedis } from '../../src/queue/redis.js';
import { RedisRunStore } from '../../src/queue/run-store.js';
import { startRunWorker } from '../../src/queue/worker.js';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

function line(value: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

const reporter: RunReporter = {
  started: async (run, resumed) => line({ kind: 'started', runId: run.runId, resumed }),
  event: (_run, event) => line({ kind: 'event', event }),
  finished: async (run, outcome) => line({ kind: 'finished', runId: run.runId, outcome }),
  flush: async () => {},
};

const redisUrl = required('WORKER_REDIS_URL');
const prefix = required('WORKER_PREFIX');
const redis = createRedis(redisUrl, 'worker');
const worker = await startRunWorker({
  redisUrl,
  prefix,
  concurrency: 1,
  lockTtlMs: Number(required('WORKER_LOCK_TTL_MS')),
  stalledIntervalMs: Number(required('WORKER_STALLED_INTERVAL_MS')),
  shutdownGraceMs: 20_000,
  jobRetentionMs: 3_600_000,
  runStore: new RedisRunStore(redis, prefix),
  audit: new RedisAuditLog(redis, prefix),
  reporterFor: () => reporter,
  logger: silentLogger,
  env: JSON.parse(required('WORKER_ENGINE_ENV')) as Record<string, string>,
  workerId: process.env.WORKER_ID,
  controlPollMs: 100,
});
line({ kind: 'ready', worker: worker.id });

process.once('SIGTERM', () => {
  void worker
    .close()
    .then(() => redis.quit())
    .finally(() => process.exit(0));
});
