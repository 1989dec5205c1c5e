/**
 * How the soak (bench/soak.ts) drives a run: through the `reboot-cluster` CLI in-process, or through
 * the queue worker over a private Redis, where Abort, Resume and Finish do what the Slack buttons do.
 */
import type { Lab } from '../lab/lab.js';
import { loadConfig } from '../src/config.js';
import type { RunOutcome } from '../src/engine/outcome.js';
import { RedisCheckpointReader } from '../src/queue/redis-checkpoint-store.js';
import type { RunWorker } from '../src/queue/worker.js';
import { createEngineDeps } from '../src/runtime.js';
import { type CliRun, startCli } from '../test/support/lab-cli.js';
import {
  createApprovedRun,
  labEngineEnv,
  type QueueFixture,
  RecordingReporter,
  startQueueFixture,
  startTestWorker,
} from '../test/support/queue-fixtures.js';
import type { Interruptible, Status } from './soak-faults.js';

/** What the soak's runs wait for: short, because the lab's fast timings reboot a host in under a second. */
export const SOAK_ENV: Record<string, string> = {
  HOST_REBOOT_TIMEOUT_SECONDS: '8',
  HOST_SHUTDOWN_TIMEOUT_SECONDS: '5',
  CLOUDSTACK_WAIT_TIMEOUT_SECONDS: '5',
  CLOUDSTACK_UPDATE_TIMEOUT_SECONDS: '5',
  XAPI_LOGIN_TIMEOUT_SECONDS: '8',
};

/** What a driver needs of a cluster: its name, its lab of the moment and the CLI's state directory. */
export interface SoakCluster {
  readonly name: string;
  readonly lab: Lab;
  readonly stateDir: string;
}

export interface Ending {
  /** Handovers on the way (a worker restarted: the run was suspended and resumed elsewhere). */
  handovers?: number;
  status: Status;
  reason?: string;
  leftChanged: string[];
  /** The CLI's exit code and the one its outcome calls for; undefined through the worker. */
  exitCode?: number;
  expectedExitCode?: number;
}

export interface Attempt extends Interruptible {
  done: Promise<Ending>;
}

export interface Driver {
  start(cluster: SoakCluster, env: Record<string, string>): Promise<Attempt>;
  /** What Resume does (the same CLI command again; the Slack button). */
  resume(cluster: SoakCluster): Promise<Attempt>;
  /** What Finish does: the run is closed and its checkpoint dropped, a human mends the cluster. */
  finishByHand(cluster: SoakCluster): Promise<void>;
  close(): Promise<void>;
}

export function cliDriver(): Driver {
  const run = (cluster: SoakCluster, env: Record<string, string>): Attempt => {
    const cli = startCli(cluster.lab, [cluster.name, '--exec', '--json'], {
      STATE_DIR: cluster.stateDir,
      ...SOAK_ENV,
      ...env,
    });
    return {
      interrupt: (hard) => {
        cli.interrupt();
        if (hard) cli.interrupt();
      },
      done: cli.done.then(cliEnding),
    };
  };
  return {
    start: async (cluster, env) => run(cluster, env),
    resume: async (cluster) => run(cluster, {}),
    // The next run of a replaced cluster gets a fresh STATE_DIR: the old checkpoint is left behind.
    finishByHand: async () => {},
    close: async () => {},
  };
}

function cliEnding(run: CliRun): Ending {
  const last = run.events.at(-1);
  if (last?.type !== 'outcome')
    return { status: 'failed', reason: run.stderr.trim(), leftChanged: [], exitCode: run.code };
  const status = last.status as Status;
  const attention = (last.attention as string[] | undefined) ?? [];
  return {
    status,
    reason: last.reason as string | undefined,
    leftChanged: (last.leftChanged as string[] | undefined) ?? [],
    exitCode: run.code,
    expectedExitCode: expectedExitCode(status, attention),
  };
}

function expectedExitCode(status: Status, attention: string[]): number {
  switch (status) {
    case 'done':
      return attention.length === 0 ? 0 : 1;
    case 'aborted':
      return 4;
    case 'refused':
      return 3;
    default:
      return 1;
  }
}

/** Run states in which the worker is done with a run for now. */
const WORKER_ENDINGS = ['done', 'failed', 'aborted', 'needs_attention', 'refused'];
const WORKER_RUN_TIMEOUT_MS = 120_000;

/** One private Redis and one queue worker for every cluster; each run goes to its cluster's current lab. */
export async function workerDriver(clusters: readonly SoakCluster[]): Promise<Driver> {
  const fixture: QueueFixture = await startQueueFixture();
  const byName = new Map(clusters.map((cluster) => [cluster.name, cluster]));
  const envs = new Map<string, Record<string, string>>();
  const runIds = new Map<string, string>();
  const reporters = new Map<string, RecordingReporter>();
  let worker: RunWorker | undefined;
  let restarting: Promise<void> = Promise.resolve();
  const startWorker = async () => {
    const first = clusters[0] as SoakCluster;
    worker = await startTestWorker(fixture, [first.lab], {
      concurrency: clusters.length,
      workerId: `soak-worker:${fixture.workers.length + 1}`,
      reporterFor: (run) => reporters.get(run.runId) ?? new RecordingReporter(),
      // The cluster's lab of the moment (a replaced cluster has a new one) with this run's waits.
      createDeps: (_config, options, run) => {
        const cluster = byName.get(run.cluster) as SoakCluster;
        const env = { ...labEngineEnv(cluster.lab), ...SOAK_ENV, ...envs.get(run.cluster) };
        return createEngineDeps(loadConfig(env), options);
      },
    });
  };
  await startWorker();

  const attempt = (cluster: SoakCluster): Attempt => {
    const runId = runIds.get(cluster.name) as string;
    const reporter = reporters.get(runId) as RecordingReporter;
    const seen = reporter.outcomes.length;
    return {
      interrupt: (hard) => {
        if (!hard) {
          void fixture.runStore.requestAbort(runId, 'USOAK');
          return;
        }
        // A deploy mid-run: the worker hands its runs over at the next safe point, a new one takes them.
        restarting = restarting.then(async () => {
          const leaving = worker;
          await leaving?.close();
          fixture.workers.splice(fixture.workers.indexOf(leaving as RunWorker), 1);
          await startWorker();
        });
      },
      done: (async (): Promise<Ending> => {
        const deadline = Date.now() + WORKER_RUN_TIMEOUT_MS;
        for (;;) {
          const record = await fixture.runStore.get(runId);
          const outcomes = reporter.outcomes.slice(seen);
          const outcome = outcomes.find((o) => o.status !== 'suspended' && o.status !== 'stopped');
          if (record && WORKER_ENDINGS.includes(record.state) && outcome)
            return { ...workerEnding(outcome), handovers: outcomes.indexOf(outcome) };
          if (Date.now() > deadline)
            return {
              status: 'failed',
              reason: `soak: the run is still ${record?.state} after ${WORKER_RUN_TIMEOUT_MS} ms`,
              leftChanged: [],
            };
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })(),
    };
  };

  return {
    start: async (cluster, env) => {
      envs.set(cluster.name, env);
      const run = await createApprovedRun(fixture, cluster.name);
      runIds.set(cluster.name, run.runId);
      reporters.set(run.runId, new RecordingReporter());
      await restarting;
      await fixture.queue.enqueue(run.runId);
      return attempt(cluster);
    },
    resume: async (cluster) => {
      envs.set(cluster.name, {});
      const runId = runIds.get(cluster.name) as string;
      const moved = await fixture.runStore.transition(runId, ['needs_attention'], 'approved');
      if (!moved.ok) throw new Error(`soak: cannot resume run ${runId}: it is ${moved.record?.state}`);
      await restarting;
      await fixture.queue.enqueue(runId);
      return attempt(cluster);
    },
    finishByHand: async (cluster) => {
      const runId = runIds.get(cluster.name) as string;
      await fixture.runStore.transition(runId, ['needs_attention'], 'finished_by_hand');
      if (!(await new RedisCheckpointReader(fixture.redis, fixture.server.prefix).clear(cluster.name)))
        throw new Error(`soak: the checkpoint of ${cluster.name} is still locked by a worker`);
    },
    close: async () => {
      await restarting;
      await fixture.stop();
    },
  };
}

function workerEnding(outcome: RunOutcome): Ending {
  switch (outcome.status) {
    case 'needs_attention':
      return {
        status: 'needs_attention',
        reason: `${outcome.host}: ${outcome.reason}`,
        leftChanged: outcome.leftChanged,
      };
    case 'failed':
    case 'refused':
      return { status: outcome.status, reason: outcome.reason, leftChanged: [] };
    case 'done':
      return { status: 'done', reason: outcome.attention.join('; ') || undefined, leftChanged: [] };
    default:
      return { status: outcome.status, leftChanged: [] };
  }
}
