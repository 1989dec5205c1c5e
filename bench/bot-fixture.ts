/**
 * What the bot benchmarks share: a private Redis, the local Slack Web API (which records every
 * call with its arrival time), one lab cluster, and the bot itself (`startService`, ROLE=all) in a
 * process of its own, driven by correctly signed Slack requests.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab } from '../lab/lab.js';
import type { LabTimings } from '../lab/pool-model.js';
import type { RunRecord, RunState } from '../src/queue/contracts.js';
import { createRedis, type Redis } from '../src/queue/redis.js';
import { RedisRunStore } from '../src/queue/run-store.js';
import { freePort } from '../test/support/free-port.js';
import { FAST_ENGINE_ENV, startTestLab } from '../test/support/lab-cli.js';
import { startTestRedis, type TestRedis } from '../test/support/redis-server.js';
import { type SlackApiServer, startSlackApiServer } from '../test/support/slack-api-server.js';
import { SlackRequester } from '../test/support/slack-requests.js';
import { type BenchChild, spawnBenchChild } from './processes/child.js';

export const SIGNING_SECRET = 'bench-signing-secret-value';
export const BOT_TOKEN = 'xoxb-bench-bot-token-value';
export const OPS_CHANNEL = 'COPS';
export const REQUESTER = 'UREQ';
export const APPROVER = 'UAPP';

export interface BotFixtureOptions {
  hosts: number;
  vms: number;
  timings: Partial<LabTimings>;
  pollIntervalMs: number;
}

export interface BotFixture {
  redisServer: TestRedis;
  redis: Redis;
  slack: SlackApiServer;
  lab: Lab;
  service: BenchChild;
  requester: SlackRequester;
  runs: RedisRunStore;
  /** The engine environment the bot's worker runs with (lab + waits), for reporting. */
  pollIntervalMs: number;
  stop(): Promise<void>;
}

export async function startBotFixture(options: BotFixtureOptions): Promise<BotFixture> {
  const stops: Array<() => Promise<unknown>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    const [redisServer, slack, lab] = await Promise.all([
      startTestRedis(),
      startSlackApiServer({ token: BOT_TOKEN }),
      startTestLab({ hosts: options.hosts, vms: options.vms, timings: options.timings }),
    ]);
    stops.push(
      () => redisServer.stop(),
      () => slack.close(),
      () => lab.stop(),
    );
    const stateDir = mkdtempSync(join(tmpdir(), 'crb-bench-bot-'));
    stops.push(async () => rmSync(stateDir, { recursive: true, force: true }));
    const port = await freePort();
    const service = spawnBenchChild('bench/processes/service-process.ts', {
      BENCH_SERVICE_ENV: JSON.stringify({
        ...lab.env(),
        ...FAST_ENGINE_ENV,
        POLL_INTERVAL_MS: String(options.pollIntervalMs),
        STATE_DIR: stateDir,
        ROLE: 'all',
        PORT: String(port),
        REDIS_URL: redisServer.url,
        QUEUE_PREFIX: redisServer.prefix,
        SLACK_BOT_TOKEN: BOT_TOKEN,
        SLACK_SIGNING_SECRET: SIGNING_SECRET,
        SLACK_API_URL: slack.apiUrl,
        ALLOWED_CHANNEL_IDS: OPS_CHANNEL,
        REQUESTER_USER_IDS: REQUESTER,
        APPROVER_USER_IDS: APPROVER,
      }),
    });
    stops.push(() => service.stop());
    await service.waitFor((line) => line.kind === 'ready', 'the bot to listen', 60_000);
    const redis = createRedis(redisServer.url, 'client');
    stops.push(async () => redis.disconnect());
    return {
      redisServer,
      redis,
      slack,
      lab,
      service,
      requester: new SlackRequester(`http://127.0.0.1:${port}/slack/events`, SIGNING_SECRET),
      runs: new RedisRunStore(redis, redisServer.prefix),
      pollIntervalMs: options.pollIntervalMs,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

export async function waitForRunState(
  runs: RedisRunStore,
  runId: string,
  states: readonly RunState[],
  timeoutMs: number,
): Promise<RunRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await runs.get(runId);
    if (run && states.includes(run.state)) return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} still ${run?.state} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Resolves once `count()` has not changed for `quietMs` (bounded by `timeoutMs`): a queue drained. */
export async function settled(count: () => number, quietMs: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = count();
  let since = Date.now();
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = count();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return;
    }
  }
}

export { freePort };
