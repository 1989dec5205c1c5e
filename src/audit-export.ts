#!/usr/bin/env node
/**
 * `npm run audit:export -- [--run RUN_ID] [--limit N]`: the durable audit record as JSON on stdout
 * (every request, approval, refusal, click and step), for backups and SIEM ingestion.
 */
import { parseArgs } from 'node:util';
import { RedisAuditLog } from './audit/audit-log.js';
import { readEnvironment } from './config.js';
import { createRedis } from './queue/redis.js';

const USAGE =
  'Usage: npm run audit:export -- [--run RUN_ID] [--limit N]   (REDIS_URL, QUEUE_PREFIX from the environment)';

async function main(): Promise<number> {
  let values: { run?: string; limit?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: { run: { type: 'string' }, limit: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.limit !== undefined && !/^\d+$/.test(values.limit)) {
    process.stderr.write(`--limit must be a whole number\n${USAGE}\n`);
    return 2;
  }
  const env = readEnvironment(process.env);
  const redis = createRedis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', 'client');
  try {
    const audit = new RedisAuditLog(redis, env.QUEUE_PREFIX ?? 'crb');
    const entries = await audit.list({
      ...(values.run ? { runId: values.run } : {}),
      ...(values.limit ? { limit: Number(values.limit) } : {}),
    });
    process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
    return 0;
  } finally {
    redis.disconnect();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`audit export failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
