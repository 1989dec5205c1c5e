/**
 * The queue worker: takes a job ("look at run X now"), and if that run is due, runs its rolling
 * reboot with the engine under the cluster's lock, reports it, and maps the outcome to the run's
 * state. BullMQ is at-least-once, so a job may come twice or to two workers at once; the run's
 * state (checked under the lock) and the fenced lock itself make that harmless (invariant I4).
 * A worker that dies leaves the job stalled: BullMQ hands it to another worker, which resumes the
 * run from its checkpoint (I7). A worker asked to stop suspends its runs at the next host.
 */
import { hostname } from 'node:os';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Config, type Env, loadConfig } from '../config.js';
import type { CheckpointStore } from '../engine/checkpoint.js';
import type { EngineEvent, TimedEvent } from '../engine/events.js';
import { type HookCatalog, loadHookCatalog, resolveHook } from '../engine/hooks.js';
import type { RunOutcome } from '../engine/outcome.js';
import type { EngineDeps, RunControl, RunRequest } from '../engine/ports.js';
import { runRollingReboot } from '../engine/run.js';
import { sleep, withTimeout } from '../engine/waits.js';
import { describeError, LockLostError } from '../errors.js';
import type { Logger } from '../log.js';
import { createEngineDeps } from '../runtime.js';
import { acquireClusterLock, clusterLockKey, type HeldClusterLock } from './cluster-lock.js';
import type { AuditEntry, AuditLog, RunRecord, RunReporter, RunState, RunStore } from './contracts.js';
import { RUN_QUEUE_NAME, type RunJobData, runJobSchema } from './job-schema.js';
import { createRedis } from './redis.js';
import { RedisCheckpointStore } from './redis-checkpoint-store.js';
import { BullRunQueue } from './run-queue.js';

/** `createEngineDeps`' shape; the run is passed too, so tests can point different clusters at different labs. */
export type CreateDeps = (
  config: Config,
  options: { emit(event: EngineEvent): void; logger?: Logger; checkpoints?: CheckpointStore },
  run: RunRecord,
) => EngineDeps;

export interface RunWorkerOptions {
  redisUrl: string;
  /** Every key (ours and BullMQ's) starts with `${prefix}:`. */
  prefix: string;
  /** Runs (clusters) at once in this process. */
  concurrency: number;
  lockTtlMs: number;
  /** BullMQ's job lock and stalled check: how soon a dead worker's job goes to another worker. */
  stalledIntervalMs: number;
  /** How long `close()` lets runs reach their next host before stopping them at once. */
  shutdownGraceMs: number;
  /** Retention of the jobs this worker queues again (suspended runs). */
  jobRetentionMs: number;
  runStore: RunStore;
  audit: AuditLog;
  reporterFor(run: RunRecord): RunReporter;
  logger: Logger;
  /** The engine's environment (src/config.ts), read once at start. */
  env: Env;
  createDeps?: CreateDeps;
  /** Shown in the run record and audit; `host:pid` by default. */
  workerId?: string;
  /** How often abort, Continue and lock waits are polled. */
  controlPollMs?: number;
  /** Told about each run (metrics, structured logs, stall alarm). */
  observer?: RunObserver;
}

/** Sees the runs of a worker as they go; must not throw. */
export interface RunObserver {
  /** The run is now `running` on this worker, under its cluster's lock. */
  runStarted(run: RunRecord): void;
  event(run: RunRecord, event: TimedEvent): void;
  /** This worker stopped running it (any ending, a suspension, a lost lock); ignores runs never started. */
  runEnded(run: RunRecord, status: string): void;
  /** An attempt to take the cluster's lock found it held by someone else. */
  lockBusy(cluster: string): void;
}

export interface RunWorker {
  readonly id: string;
  /** Stops taking jobs, suspends running runs at their next host, then closes (SIGTERM). */
  close(): Promise<void>;
  /** Taking jobs: started and not closing. */
  isRunning(): boolean;
}

/** The actor of every entry a worker writes is `worker:<its id>`. */
type WorkerAuditEntry = Omit<AuditEntry, 'at' | 'actor'>;

/** Fresh (approved), or left by a worker that died (running, paused): both are resumed. */
const RUNNABLE: readonly RunState[] = ['approved', 'running', 'paused'];
const IN_PROGRESS: readonly RunState[] = ['running', 'paused'];
/** High: a run survives any number of worker deaths and deploys (the cluster lock stops doubles). */
const MAX_STALLED_COUNT = 1_000;
const REDIS_CALL_TIMEOUT_MS = 10_000;
const REPORTER_TIMEOUT_MS = 10_000;
/** After the grace period runs are stopped at once; this bounds how long that takes. */
const HARD_STOP_WAIT_MS = 10_000;

export async function startRunWorker(options: RunWorkerOptions): Promise<RunWorker> {
  const config = loadConfig(options.env);
  const hooks = loadHookCatalog(config.hooksFile);
  const redis = createRedis(options.redisUrl, 'worker');
  const worker = new QueueRunWorker(options, config, hooks, redis);
  try {
    await worker.start();
  } catch (error) {
    await worker.close().catch(() => undefined);
    throw error;
  }
  return worker;
}

interface ActiveRun {
  /** Aborted to stop the run at once: lost lock, or the shutdown grace period is over. */
  readonly stop: AbortController;
  finished: Promise<unknown>;
}

class QueueRunWorker implements RunWorker {
  readonly id: string;
  readonly #options: RunWorkerOptions;
  readonly #config: Config;
  readonly #hooks: HookCatalog;
  readonly #redis: Redis;
  readonly #log: Logger;
  readonly #pollMs: number;
  readonly #createDeps: CreateDeps;
  readonly #active = new Set<ActiveRun>();
  readonly #requeue: BullRunQueue;
  #worker: Worker<RunJobData, string> | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;

  constructor(options: RunWorkerOptions, config: Config, hooks: HookCatalog, redis: Redis) {
    this.id = options.workerId ?? `${hostname()}:${process.pid}`;
    this.#options = options;
    this.#config = config;
    this.#hooks = hooks;
    this.#redis = redis;
    this.#log = options.logger.child({ worker: this.id });
    this.#pollMs = options.controlPollMs ?? 500;
    this.#createDeps = options.createDeps ?? ((cfg, deps) => createEngineDeps(cfg, deps));
    this.#requeue = new BullRunQueue({
      connection: redis,
      prefix: options.prefix,
      retentionMs: options.jobRetentionMs,
    });
  }

  async start(): Promise<void> {
    const worker = new Worker<RunJobData, string>(RUN_QUEUE_NAME, (job) => this.#track(job), {
      connection: this.#redis,
      prefix: this.#options.prefix,
      concurrency: this.#options.concurrency,
      lockDuration: this.#options.stalledIntervalMs,
      stalledInterval: this.#options.stalledIntervalMs,
      maxStalledCount: MAX_STALLED_COUNT,
    });
    this.#worker = worker;
    worker.on('error', (error) => this.#log.error({ err: describeError(error) }, 'queue worker error'));
    worker.on('failed', (job, error) =>
      this.#log.error({ job: job?.id, err: describeError(error) }, 'queue job failed'),
    );
    await withTimeout(worker.waitUntilReady(), REDIS_CALL_TIMEOUT_MS, 'connecting the queue worker to Redis');
  }

  isRunning(): boolean {
    return !this.#closing && (this.#worker?.isRunning() ?? false);
  }

  close(): Promise<void> {
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  async #shutdown(): Promise<void> {
    this.#closing = true;
    const worker = this.#worker;
    // Stop taking jobs at once; the runs in progress see `closing` and suspend at their next host.
    await withTimeout(
      worker?.pause(true) ?? Promise.resolve(),
      REDIS_CALL_TIMEOUT_MS,
      'pausing the worker',
    ).catch((error) => this.#log.warn({ err: describeError(error) }, 'could not pause the queue worker'));
    let settled = await this.#activeSettled(this.#options.shutdownGraceMs);
    if (!settled) {
      this.#log.warn('shutdown grace period over: stopping the runs in progress at once');
      for (const run of this.#active) run.stop.abort();
      settled = await this.#activeSettled(HARD_STOP_WAIT_MS);
    }
    await worker
      ?.close(!settled)
      .catch((error) => this.#log.warn({ err: describeError(error) }, 'closing the queue worker failed'));
    await this.#requeue.close().catch(() => undefined);
    await withTimeout(this.#redis.quit(), REDIS_CALL_TIMEOUT_MS, 'closing Redis').catch(() =>
      this.#redis.disconnect(),
    );
  }

  async #activeSettled(timeoutMs: number): Promise<boolean> {
    const all = Promise.allSettled([...this.#active].map((run) => run.finished));
    return withTimeout(all, timeoutMs, 'runs to stop').then(
      () => true,
      () => false,
    );
  }

  async #track(job: Job<RunJobData, string>): Promise<string> {
    const active: ActiveRun = { stop: new AbortController(), finished: Promise.resolve() };
    const processing = this.#process(job, active);
    active.finished = processing.catch(() => undefined);
    this.#active.add(active);
    try {
      return await processing;
    } finally {
      this.#active.delete(active);
    }
  }

  async #process(job: Job<RunJobData, string>, active: ActiveRun): Promise<string> {
    const parsed = runJobSchema.safeParse(job.data);
    if (!parsed.success) {
      // Not retried: a malformed job never becomes valid.
      throw new UnrecoverableError(`job ${job.id} has invalid data: ${parsed.error.issues[0]?.message}`);
    }
    const { runId } = parsed.data;
    const run = await withTimeout(
      this.#options.runStore.get(runId),
      REDIS_CALL_TIMEOUT_MS,
      `reading run ${runId}`,
    );
    if (!run) {
      await this.#audit({ runId, action: 'job_skipped', detail: { job: job.id, reason: 'no such run' } });
      return 'skipped';
    }
    if (!RUNNABLE.includes(run.state) || !run.exec) {
      // A duplicate or stale job (BullMQ is at-least-once): the run already ended or is not due.
      await this.#audit(runAudit(run, 'job_skipped', { job: job.id, state: run.state, exec: run.exec }));
      return 'skipped';
    }
    const lock = await this.#acquireLock(run, `${this.id}/${job.id}`);
    if (!lock) return 'lock_busy';
    // The reason reaches the engine, which tells the team why it stopped at once.
    lock.onLost(() => active.stop.abort(new LockLostError(run.cluster, lock.token)));
    let status = 'error';
    try {
      status = await this.#runUnderLock(run, lock, active);
      return status;
    } finally {
      this.#observe((observer) => observer.runEnded(run, status));
      await lock.release();
    }
  }

  /**
   * The holder may be a dead worker whose lock is about to expire: wait up to two ttls. Anyone
   * holding it longer is alive and running this cluster; the run is left as it is.
   */
  async #acquireLock(run: RunRecord, owner: string): Promise<HeldClusterLock | undefined> {
    const { lockTtlMs, prefix } = this.#options;
    const deadline = Date.now() + 2 * lockTtlMs;
    for (;;) {
      if (this.#closing) {
        // Not started here: another worker takes it (a duplicate job is harmless).
        await this.#requeue.enqueue(run.runId);
        await this.#audit(runAudit(run, 'job_requeued', { reason: 'worker shutting down' }));
        return undefined;
      }
      const lock = await acquireClusterLock(this.#redis, prefix, run.cluster, owner, lockTtlMs);
      if (lock) return lock;
      this.#observe((observer) => observer.lockBusy(run.cluster));
      if (Date.now() >= deadline) {
        const holder = await this.#redis.get(clusterLockKey(prefix, run.cluster)).catch(() => null);
        await this.#audit(runAudit(run, 'lock_busy', { holder, state: run.state }));
        this.#log.warn({ runId: run.runId, cluster: run.cluster, holder }, 'cluster lock held elsewhere');
        return undefined;
      }
      await sleep(Math.min(this.#pollMs, Math.max(50, Math.floor(lockTtlMs / 4))));
    }
  }

  async #runUnderLock(queued: RunRecord, lock: HeldClusterLock, active: ActiveRun): Promise<string> {
    const { runStore } = this.#options;
    // Checked again under the lock: the holder we waited for may have finished this very run.
    const started = await runStore.transition(queued.runId, RUNNABLE, 'running', { worker: this.id });
    if (!started.ok) {
      if (started.record)
        await this.#audit(runAudit(started.record, 'job_skipped', { state: started.record.state }));
      return 'skipped';
    }
    const record = started.record;
    // Every line about this run carries its id and cluster (the engine's and the XAPI client's too).
    const log = this.#log.child({ runId: record.runId, cluster: record.cluster });
    this.#observe((observer) => observer.runStarted(record));
    const checkpoints = new RedisCheckpointStore(this.#redis, this.#options.prefix, lock, () =>
      active.stop.abort(),
    );
    const progress = new RunProgress(record, this.#options.reporterFor(record), log, {
      audit: (entry) => this.#audit(entry),
      update: (patch) => runStore.update(record.runId, patch),
      observe: (run, event) => this.#observe((observer) => observer.event(run, event)),
    });
    let outcome: RunOutcome;
    let resumed = false;
    try {
      resumed = (await checkpoints.load(record.cluster)) !== undefined;
      await this.#audit(
        runAudit(record, 'job_started', { resumed, token: lock.token, previousState: queued.state }),
      );
      await progress.started(resumed);
      const request = this.#request(record);
      const control = await this.#control(record, lock, active);
      try {
        const deps = this.#createDeps(
          this.#config,
          { emit: (event) => progress.event(event), logger: log, checkpoints },
          record,
        );
        outcome = await runRollingReboot(deps, request, control);
      } finally {
        control.dispose();
      }
    } catch (error) {
      outcome = await this.#unexpectedEnd(record, checkpoints, error);
    }
    await progress.drain();
    return this.#finish(progress, lock, outcome);
  }

  /** The engine threw instead of returning an outcome: with a checkpoint, a human must look. */
  async #unexpectedEnd(record: RunRecord, checkpoints: CheckpointStore, error: unknown): Promise<RunOutcome> {
    const reason = describeError(error);
    this.#log.error({ runId: record.runId, err: reason }, 'run ended on an unexpected error');
    const checkpoint = await checkpoints.load(record.cluster).catch(() => 'unreadable' as const);
    if (checkpoint === undefined) return { status: 'failed', reason };
    return {
      status: 'needs_attention',
      host: record.cluster,
      reason,
      leftChanged: ['the run stopped on this error with its checkpoint kept: Resume continues from it'],
    };
  }

  #request(run: RunRecord): RunRequest {
    return {
      cluster: run.cluster,
      exec: run.exec,
      threads: run.options.threads,
      ignoreHosts: run.options.ignoreHosts,
      restorePlacement: run.options.restorePlacement,
      // Hooks are named in Slack and defined here: an unknown name fails the run before anything changes.
      preEmptyHook: resolveHook(this.#hooks, run.options.preEmptyHook, '--pre-empty-hook'),
      postEmptyHook: resolveHook(this.#hooks, run.options.postEmptyHook, '--post-empty-hook'),
    };
  }

  async #control(
    run: RunRecord,
    lock: HeldClusterLock,
    active: ActiveRun,
  ): Promise<RunControl & { dispose(): void }> {
    const { runStore } = this.#options;
    // The engine asks synchronously; Redis is asked in the background and the answer cached.
    let abort = false;
    const refresh = async () => {
      try {
        abort =
          abort ||
          (await withTimeout(runStore.isAbortRequested(run.runId), REDIS_CALL_TIMEOUT_MS, 'abort flag'));
      } catch (error) {
        this.#log.warn({ runId: run.runId, err: describeError(error) }, 'could not read the abort flag');
      }
    };
    await refresh();
    const timer = setInterval(() => void refresh(), this.#pollMs);
    timer.unref();
    return {
      abortRequested: () => abort,
      waitBeforeHost: run.options.step
        ? (nextHost) => this.#waitForContinue(run, nextHost, () => abort, active)
        : undefined,
      beforeHost: async (host) => {
        if (active.stop.signal.aborted)
          throw new Error(`stopping before ${host}: the worker is shutting down`);
        // I4: the lock is re-checked in Redis right before a host is touched.
        if (!(await lock.isHeld())) {
          active.stop.abort();
          throw new LockLostError(run.cluster, lock.token);
        }
      },
      suspendRequested: () => this.#closing || lock.lost,
      hardStop: active.stop.signal,
      dispose: () => clearInterval(timer),
    };
  }

  /** Step mode: the run waits, state `paused`, until someone clicks Continue (or Abort). */
  async #waitForContinue(
    run: RunRecord,
    nextHost: string,
    aborted: () => boolean,
    active: ActiveRun,
  ): Promise<void> {
    const { runStore } = this.#options;
    await runStore.transition(run.runId, ['running'], 'paused');
    try {
      for (;;) {
        if (aborted() || active.stop.signal.aborted) return;
        if (this.#closing) {
          // The engine goes on to the host when this returns: a stop at once here (no host is in
          // progress) leaves the checkpoint for another worker, like a suspension.
          active.stop.abort();
          return;
        }
        if (await runStore.takeContinue(run.runId)) {
          await this.#audit(runAudit(run, 'continue_taken', { nextHost }));
          return;
        }
        await sleep(this.#pollMs, active.stop.signal);
      }
    } finally {
      await runStore
        .transition(run.runId, ['paused'], 'running')
        .catch((error) =>
          this.#log.warn({ runId: run.runId, err: describeError(error) }, 'could not leave paused'),
        );
    }
  }

  async #finish(progress: RunProgress, lock: HeldClusterLock, outcome: RunOutcome): Promise<string> {
    const { runStore } = this.#options;
    const run = progress.record;
    if (!(await lock.isHeld())) return this.#lockLost(progress, outcome, lock);
    if (outcome.status === 'suspended' || outcome.status === 'stopped') {
      const next = outcome.status === 'suspended' ? ` before ${outcome.nextHost}` : '';
      const result = `suspended${next}: worker ${this.id} shut down; another worker resumes it`;
      const moved = await runStore.transition(run.runId, IN_PROGRESS, 'approved', { result });
      await this.#requeue.enqueue(run.runId);
      await this.#audit(
        runAudit(run, 'suspended', { outcome: outcome.status, hostsDone: progress.record.hostsDone }),
      );
      await progress.finished(moved.record ?? run, outcome);
      return outcome.status;
    }
    const { state, result } = endState(outcome);
    const ended = await runStore.transition(run.runId, IN_PROGRESS, state, {
      result,
      finishedAt: new Date().toISOString(),
    });
    await this.#audit(runAudit(run, 'run_finished', { status: outcome.status, state, result }));
    await progress.finished(ended.record ?? run, outcome);
    return outcome.status;
  }

  /**
   * This worker may no longer touch the cluster. If another worker holds the lock it owns the run
   * now; if nobody does, nobody is running it: a human decides (Resume or Finish).
   */
  async #lockLost(progress: RunProgress, outcome: RunOutcome, lock: HeldClusterLock): Promise<string> {
    const { runStore, prefix } = this.#options;
    const run = progress.record;
    const holder = await this.#redis.get(clusterLockKey(prefix, run.cluster)).catch(() => 'unknown');
    await this.#audit(runAudit(run, 'lock_lost', { outcome: outcome.status, holder }));
    this.#log.error({ runId: run.runId, cluster: run.cluster, holder }, 'cluster lock lost during the run');
    const current = await runStore.get(run.runId);
    // A renewal that timed out can mark the lock lost while Redis still holds our value (or cannot say):
    // then nobody else runs this cluster either, and the run must not be left looking `running`.
    const nobodyElse = holder === null || holder === 'unknown' || holder === lock.value;
    if (nobodyElse && current && current.worker === this.id && IN_PROGRESS.includes(current.state)) {
      const reason = `worker ${this.id} lost its lock on ${run.cluster} and stopped; check the cluster, then Resume or Finish`;
      const moved = await runStore.transition(run.runId, IN_PROGRESS, 'needs_attention', { result: reason });
      await progress.finished(moved.record ?? run, {
        status: 'needs_attention',
        host: run.cluster,
        reason,
        leftChanged: ['whatever the checkpoint lists: Resume continues from it'],
      });
    } else {
      await progress.flush();
    }
    return 'lock_lost';
  }

  #observe(tell: (observer: RunObserver) => void): void {
    if (!this.#options.observer) return;
    try {
      tell(this.#options.observer);
    } catch (error) {
      this.#log.warn({ err: describeError(error) }, 'run observer failed');
    }
  }

  async #audit(entry: WorkerAuditEntry): Promise<void> {
    try {
      await withTimeout(
        this.#options.audit.append({ ...entry, actor: `worker:${this.id}` }),
        REDIS_CALL_TIMEOUT_MS,
        'writing the audit log',
      );
    } catch (error) {
      this.#log.error(
        { runId: entry.runId, action: entry.action, err: describeError(error) },
        'audit write failed',
      );
    }
  }
}

interface ProgressSinks {
  audit(entry: WorkerAuditEntry): Promise<void>;
  update(patch: Partial<Pick<RunRecord, 'hostsDone' | 'hostsTotal'>>): Promise<unknown>;
  observe(run: RunRecord, event: TimedEvent): void;
}

/**
 * One run's events: to the reporter at once (a reporter error never reaches the engine), and to the
 * run record and audit log in order, in the background.
 */
class RunProgress {
  #pending: Promise<void> = Promise.resolve();

  constructor(
    public record: RunRecord,
    readonly reporter: RunReporter,
    readonly log: Logger,
    readonly sinks: ProgressSinks,
  ) {}

  async started(resumed: boolean): Promise<void> {
    await this.#guard('started', () => this.reporter.started(this.record, resumed));
  }

  event(event: EngineEvent): void {
    const timed = { ...event, at: new Date().toISOString() } as TimedEvent;
    try {
      this.reporter.event(this.record, timed);
    } catch (error) {
      this.log.warn({ runId: this.record.runId, err: describeError(error) }, 'reporter failed on an event');
    }
    this.sinks.observe(this.record, timed);
    this.#record(event);
  }

  async finished(record: RunRecord, outcome: RunOutcome): Promise<void> {
    this.record = record;
    await this.#guard('finished', () => this.reporter.finished(record, outcome));
    await this.flush();
  }

  async flush(): Promise<void> {
    await this.#guard('flush', () => this.reporter.flush(REPORTER_TIMEOUT_MS));
  }

  /** Waits for the background writes (bounded). */
  async drain(): Promise<void> {
    await withTimeout(this.#pending, REDIS_CALL_TIMEOUT_MS, 'run record updates').catch(() => undefined);
  }

  #record(event: EngineEvent): void {
    const run = this.record;
    const audit = (action: string, detail: Record<string, unknown>) =>
      this.#later(() => this.sinks.audit(runAudit(run, action, detail)));
    switch (event.type) {
      case 'plan':
        this.#update({ hostsTotal: event.plan.hosts.length });
        break;
      case 'host_started':
        this.#update({ hostsTotal: event.total });
        break;
      case 'host_done':
        this.#update({ hostsDone: event.index, hostsTotal: event.total });
        audit('host_done', {
          host: event.host,
          seconds: event.seconds,
          migrations: event.migrations,
          index: event.index,
          total: event.total,
        });
        break;
      case 'failed':
        audit('run_failed', { reason: event.reason, error: event.error, leftChanged: event.leftChanged });
        break;
      case 'aborted':
        audit('aborted', { hostsDone: event.hostsDone, leftChanged: event.leftChanged });
        break;
      case 'needs_attention':
        audit('needs_attention', { host: event.host, reason: event.reason, leftChanged: event.leftChanged });
        break;
      default:
        break;
    }
  }

  #update(patch: Partial<Pick<RunRecord, 'hostsDone' | 'hostsTotal'>>): void {
    this.record = { ...this.record, ...patch };
    this.#later(async () => {
      await this.sinks.update(patch);
    });
  }

  #later(work: () => Promise<void>): void {
    this.#pending = this.#pending.then(work).catch((error: unknown) => {
      this.log.warn({ runId: this.record.runId, err: describeError(error) }, 'run record update failed');
    });
  }

  async #guard(what: string, call: () => Promise<void>): Promise<void> {
    try {
      await withTimeout(call(), REPORTER_TIMEOUT_MS + 1000, `reporter ${what}`);
    } catch (error) {
      this.log.warn({ runId: this.record.runId, err: describeError(error) }, `reporter failed: ${what}`);
    }
  }
}

function runAudit(run: RunRecord, action: string, detail: Record<string, unknown>): WorkerAuditEntry {
  return { runId: run.runId, cluster: run.cluster, action, detail };
}

/** The run's final state for an engine outcome (suspensions are handled before). */
function endState(outcome: RunOutcome): { state: RunState; result: string } {
  switch (outcome.status) {
    case 'done':
      return {
        state: 'done',
        result:
          outcome.attention.length === 0
            ? 'every host rebooted'
            : `every host rebooted; needs a human: ${outcome.attention.join('; ')}`,
      };
    case 'aborted':
      return { state: 'aborted', result: 'aborted; the cluster was restored' };
    case 'failed':
      return { state: 'failed', result: outcome.reason };
    case 'refused':
      return { state: 'failed', result: `refused by pre-flight, nothing changed: ${outcome.reason}` };
    case 'needs_attention':
      return { state: 'needs_attention', result: `${outcome.host}: ${outcome.reason}` };
    case 'dry_run':
      return { state: 'dry_run', result: outcome.ok ? 'dry run' : 'dry run: --exec would be refused' };
    case 'stopped':
    case 'suspended':
      return { state: 'approved', result: outcome.status };
  }
}
