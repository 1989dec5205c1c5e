/**
 * A queue worker as `ROLE=worker` runs it (Redis run store and audit, the Slack thread reporter
 * writing to SLACK_API_URL), but serving several clusters, each with its own lab: the worker's
 * `createDeps` hook sends each run to its cluster's engine configuration. Configured by the JSON
 * in BENCH_WORKER_CONFIG; writes {"kind":"ready"}, usage samples every 250 ms, {"kind":"stopped"}.
 */
import { RedisAuditLog } from '../../src/audit/audit-log.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { createRedis } from '../../src/queue/redis.js';
import { RedisRunStore } from '../../src/queue/run-store.js';
import { startRunWorker } from '../../src/queue/worker.js';
import { createEngineDeps } from '../../src/runtime.js';
import { createSlackRunReporter } from '../../src/slack/run-reporter.js';
import { chatApiOf, createSlackWebClient, SlackWriter } from '../../src/slack/slack-writer.js';
import { reportUsage, sampleUsage } from './usage.js';

export interface WorkerProcessConfig {
  redisUrl: string;
  prefix: string;
  concurrency: number;
  /** Cluster name → the engine environment pointing at that cluster's lab. */
  clusters: Record<string, Record<string, string>>;
  /** `minIntervalMs` spaces calls per channel (the writer's default, as in production, when absent). */
  slack: { apiUrl: string; botToken: string; minIntervalMs?: number };
}

const write = (line: string) => process.stdout.write(line);
const raw = process.env.BENCH_WORKER_CONFIG;
if (!raw) throw new Error('BENCH_WORKER_CONFIG is required');
const config = JSON.parse(raw) as WorkerProcessConfig;
const configs = new Map(Object.entries(config.clusters).map(([name, env]) => [name, loadConfig(env)]));
const [firstEnv] = Object.values(config.clusters);
if (!firstEnv) throw new Error('at least one cluster');

const redis = createRedis(config.redisUrl, 'client');
const writer = new SlackWriter({
  api: chatApiOf(createSlackWebClient(config.slack, { logger: silentLogger })),
  retryMs: 60_000,
  ...(config.slack.minIntervalMs === undefined ? {} : { minIntervalMs: config.slack.minIntervalMs }),
  logger: silentLogger,
});
const worker = await startRunWorker({
  redisUrl: config.redisUrl,
  prefix: config.prefix,
  concurrency: config.concurrency,
  lockTtlMs: 60_000,
  stalledIntervalMs: 30_000,
  shutdownGraceMs: 25_000,
  jobRetentionMs: 3_600_000,
  runStore: new RedisRunStore(redis, config.prefix),
  audit: new RedisAuditLog(redis, config.prefix),
  reporterFor: createSlackRunReporter({ writer, logger: silentLogger }),
  logger: silentLogger,
  env: firstEnv,
  createDeps: (engineConfig, options, run) =>
    createEngineDeps(configs.get(run.cluster) ?? engineConfig, options),
});
const stopUsage = reportUsage(write, 250);
write(`${JSON.stringify({ kind: 'ready', worker: worker.id })}\n`);

process.once('SIGTERM', () => {
  stopUsage();
  void worker
    .close()
    .then(() => writer.flush(10_000))
    .then(() => redis.quit())
    .then(() => write(`${JSON.stringify(sampleUsage())}\n${JSON.stringify({ kind: 'stopped' })}\n`))
    .finally(() => process.exit(0));
});
