/**
 * What the queue tests share: a private Redis with the real run store, audit log and queue, run
 * records as the bot creates them, a reporter that records what a worker told it, and a worker
 * started against one or more labs (each cluster name pointing at its own lab).
 */
import { randomUUID } from 'node:crypto';
import type { Lab } from '../../lab/lab.js';
import { RedisAuditLog } from '../../src/audit/audit-log.js';
import { loadConfig } from '../../src/config.js';
import type { TimedEvent } from '../../src/engine/events.js';
import type { RunOutcome } from '../../src/engine/outcome.js';
import { silentLogger } from '../../src/log.js';
import type { RunOptions, RunRecord, RunReporter, RunState } from '../../src/queue/contracts.js';
import { createRedis, type Redis } from '../../src/queue/redis.js';
import { BullRunQueue } from '../../src/queue/run-queue.js';
import { RedisRunStore } from '../../src/queue/run-store.js';
import { type RunWorker, type RunWorkerOptions, startRunWorker } from '../../src/queue/worker.js';
import { createEngineDeps } from '../../src/runtime.js';
import { FAST_ENGINE_ENV } from './lab-cli.js';
import { startTestRedis, type TestRedis } from './redis-server.js';

/** Short enough that a dead worker's run moves on within a few seconds, long enough not to flake. */
export const TEST_LOCK_TTL_MS = 1_500;
export const TEST_STALLED_INTERVAL_MS = 1_000;

export interface QueueFixture {
  server: TestRedis;
  redis: Redis;
  runStore: RedisRunStore;
  audit: RedisAuditLog;
  queue: BullRunQueue;
  workers: RunWorker[];
  stop(): Promise<void>;
}

export async function startQueueFixture(): Promise<QueueFixture> {
  const server = await startTestRedis();
  const redis = createRedis(server.url, 'worker');
  const fixture: QueueFixture = {
    server,
    redis,
    runStore: new RedisRunStore(redis, server.prefix),
    audit: new RedisAuditLog(redis, server.prefix),
    queue: new BullRunQueue({ connection: redis, prefix: server.prefix, retentionMs: 3_600_000 }),
    workers: [],
    stop: async () => {
      await Promise.all(fixture.workers.map((worker) => worker.close()));
      await fixture.queue.close();
      await redis.quit();
      await server.stop();
    },
  };
  return fixture;
}

/** An approved `--exec` run, as the bot stores it after a second person's approval. */
export async function createApprovedRun(
  fixture: QueueFixture,
  cluster: string,
  options: Partial<RunOptions> = {},
): Promise<RunRecord> {
  const record: RunRecord = {
    runId: randomUUID(),
    cluster,
    exec: true,
    options: { threads: 5, ignoreHosts: [], restorePlacement: false, step: false, ...options },
    state: 'approved',
    requestedBy: 'U0REQUESTER',
    channel: 'C0CHANNEL',
    messageTs: '1700000000.000100',
    createdAt: new Date().toISOString(),
    approvedBy: 'U0APPROVER',
    approvedAt: new Date().toISOString(),
    hostsTotal: 0,
    hostsDone: 0,
  };
  await fixture.runStore.create(record);
  return record;
}

export class RecordingReporter implements RunReporter {
  readonly events: TimedEvent[] = [];
  readonly starts: boolean[] = [];
  readonly outcomes: RunOutcome[] = [];
  readonly #waiters = new Set<() => void>();

  async started(_run: RunRecord, resumed: boolean): Promise<void> {
    this.starts.push(resumed);
  }

  event(_run: RunRecord, event: TimedEvent): void {
    this.events.push(event);
    for (const wake of this.#waiters) wake();
  }

  async finished(_run: RunRecord, outcome: RunOutcome): Promise<void> {
    this.outcomes.push(outcome);
  }

  async flush(): Promise<void> {}

  ofType<T extends TimedEvent['type']>(type: T): Array<Extract<TimedEvent, { type: T }>> {
    return this.events.filter((e) => e.type === type) as Array<Extract<TimedEvent, { type: T }>>;
  }

  /** The first event matching `predicate`, already reported or still to come. */
  waitFor(predicate: (event: TimedEvent) => boolean, what: string, timeoutMs = 15_000): Promise<TimedEvent> {
    const found = this.events.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const check = () => {
        const event = this.events.find(predicate);
        if (!event) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(event);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }
}

/** The engine environment of one lab, with every wait shortened. */
export function labEngineEnv(lab: Lab): Record<string, string> {
  return { ...lab.env(), ...FAST_ENGINE_ENV };
}

/**
 * A worker over the fixture's Redis. With several labs, each run goes to the lab whose cluster it
 * names (through the `createDeps` injection point), with that lab's own credentials.
 */
export async function startTestWorker(
  fixture: QueueFixture,
  labs: Lab[],
  overrides: Partial<RunWorkerOptions> & { reporter?: RecordingReporter } = {},
): Promise<RunWorker> {
  const [first] = labs;
  if (!first) throw new Error('at least one lab');
  const configs = new Map(labs.map((lab) => [lab.info.cluster.name, loadConfig(labEngineEnv(lab))]));
  const reporter = overrides.reporter ?? new RecordingReporter();
  const worker = await startRunWorker({
    redisUrl: fixture.server.url,
    prefix: fixture.server.prefix,
    concurrency: 1,
    lockTtlMs: TEST_LOCK_TTL_MS,
    stalledIntervalMs: TEST_STALLED_INTERVAL_MS,
    shutdownGraceMs: 20_000,
    jobRetentionMs: 3_600_000,
    runStore: fixture.runStore,
    audit: fixture.audit,
    reporterFor: () => reporter,
    logger: silentLogger,
    env: labEngineEnv(first),
    controlPollMs: 100,
    createDeps: (config, options, run) => createEngineDeps(configs.get(run.cluster) ?? config, options),
    ...overrides,
  });
  fixture.workers.push(worker);
  return worker;
}

/** Polls the run record until it reaches one of `states`. */
export async function waitForRunState(
  fixture: QueueFixture,
  runId: string,
  states: RunState[],
  timeoutMs = 30_000,
): Promise<RunRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await fixture.runStore.get(runId);
    if (run && states.includes(run.state)) return run;
    if (Date.now() > deadline)
      throw new Error(
        `run ${runId} is ${run?.state ?? 'missing'}, not ${states.join(' or ')}, after ${timeoutMs} ms`,
      );
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The audit actions of one run, in order. */
export async function auditActions(fixture: QueueFixture, runId: string): Promise<string[]> {
  return (await fixture.audit.list({ runId })).map((entry) => entry.action);
}
