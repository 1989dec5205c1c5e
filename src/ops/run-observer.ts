/**
 * What the worker tells the outside about each run, beyond Slack: one structured log line per engine
 * event (with the run id, cluster and host), the metrics, the active-run tracker and the stall alarm.
 * Nothing here may throw into the worker.
 */
import type { EngineEvent, TimedEvent } from '../engine/events.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { recordEngineEvent } from '../metrics/engine-events.js';
import type { Metrics } from '../metrics/registry.js';
import type { RunRecord } from '../queue/contracts.js';
import type { RunObserver } from '../queue/worker.js';
import { type ActiveRuns, hostOf } from './active-runs.js';
import type { StallAlarm } from './stall-alarm.js';

export interface RunObserverDeps {
  activeRuns: ActiveRuns;
  logger: Logger;
  metrics?: Metrics;
  stallAlarm?: StallAlarm;
}

/** Hook output is the host's, not ours: only its tail is logged (the thread shows it too). */
const HOOK_OUTPUT_LOGGED = 500;
const WARN_EVENTS = new Set<EngineEvent['type']>([
  'migration_failed',
  'warning',
  'abort_requested',
  'suspended',
  'aborted',
]);
const ERROR_EVENTS = new Set<EngineEvent['type']>(['failed', 'needs_attention']);
const DEBUG_EVENTS = new Set<EngineEvent['type']>(['migration_started']);

export function createRunObserver(deps: RunObserverDeps): RunObserver {
  const { activeRuns, logger, metrics, stallAlarm } = deps;
  const loggers = new Map<string, Logger>();
  const logOf = (run: RunRecord) => {
    let log = loggers.get(run.runId);
    if (!log) {
      log = logger.child({
        runId: run.runId,
        cluster: run.cluster,
        ...(run.worker ? { worker: run.worker } : {}),
      });
      loggers.set(run.runId, log);
    }
    return log;
  };
  const guard = (what: string, run: RunRecord | undefined, work: () => void) => {
    try {
      work();
    } catch (error) {
      logger.error({ runId: run?.runId, err: describeError(error) }, `run observer failed: ${what}`);
    }
  };

  return {
    runStarted(run) {
      guard('started', run, () => {
        activeRuns.start(run);
        metrics?.runsStarted.inc({ cluster: run.cluster });
        logOf(run).info(
          { requestedBy: run.requestedBy, approvedBy: run.approvedBy, options: run.options },
          'run started',
        );
      });
    },
    event(run, event) {
      guard(event.type, run, () => {
        const before = activeRuns.get(run.runId);
        const stalledMs = before ? activeRuns.stalledMs(before) : 0;
        const currentHost = before?.host;
        const active = activeRuns.progress(run.runId, event);
        if (metrics) recordEngineEvent(metrics, run.cluster, event);
        if (active) stallAlarm?.progressed(active, stalledMs);
        const host = hostOf(event) ?? currentHost;
        logOf(run)[levelOf(event.type)](
          { ...(host ? { host } : {}), event: event.type, ...eventFields(event) },
          event.type,
        );
      });
    },
    runEnded(run, status) {
      guard('ended', run, () => {
        // Jobs that found their run not due (a duplicate, an ended run) never started it.
        if (!activeRuns.get(run.runId)) return;
        activeRuns.end(run.runId);
        stallAlarm?.ended(run.runId);
        metrics?.runsEnded.inc({ cluster: run.cluster, status });
        logOf(run).info({ status }, 'run ended on this worker');
        loggers.delete(run.runId);
      });
    },
    lockBusy(cluster) {
      guard('lock busy', undefined, () => metrics?.lockBusy.inc({ cluster }));
    },
  };
}

function levelOf(type: EngineEvent['type']): 'error' | 'warn' | 'info' | 'debug' {
  if (ERROR_EVENTS.has(type)) return 'error';
  if (WARN_EVENTS.has(type)) return 'warn';
  return DEBUG_EVENTS.has(type) ? 'debug' : 'info';
}

/** An event's details fit for a log line: the large ones summarized, the host's output clipped. */
function eventFields(event: TimedEvent): Record<string, unknown> {
  switch (event.type) {
    case 'plan':
      return {
        hosts: event.plan.hosts.map((h) => h.host),
        migrations: event.plan.totalMigrations,
        estimatedSeconds: event.plan.estimatedSeconds,
      };
    case 'preflight':
      return {
        hosts: event.hosts,
        runningVms: event.runningVms,
        blockers: event.findings
          .filter((f) => f.severity === 'blocker')
          .map((f) => `${f.code}: ${f.message}`),
        warnings: event.findings.filter((f) => f.severity === 'warning').length,
      };
    case 'hook_finished':
      return {
        hook: event.hook,
        phase: event.phase,
        exitCode: event.exitCode,
        seconds: event.seconds,
        outputTail: event.output.slice(-HOOK_OUTPUT_LOGGED),
      };
    case 'run_started':
      // The engine's own run id is not the run's: it must not overwrite the line's `runId`.
      return { engineRunId: event.runId, resumed: event.resumed, threads: event.threads };
    default: {
      const { type: _type, at: _at, ...rest } = event as TimedEvent & Record<string, unknown>;
      delete rest.host;
      return rest;
    }
  }
}
