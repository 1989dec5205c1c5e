/**
 * A run of this worker that makes no progress for longer than `thresholdMs` gets one alert in its
 * thread, mentioning its requester and approver. One per stall: once the run makes progress again
 * the alert is updated to say so, and a later stall gets a new one. The alarm only reports; it
 * never touches the run (the engine's own timeouts decide when a step has failed).
 *
 * It watches from inside the worker: a worker that died is covered by BullMQ handing its job to
 * another worker, and a whole process being gone by Prometheus (`up`, `crb_run_seconds_since_progress`).
 */
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { MessageRef, SlackWriter } from '../slack/slack-writer.js';
import type { ActiveRun, ActiveRuns } from './active-runs.js';
import { stallAlertMessage, stallResolvedMessage } from './stall-message.js';

export interface StallAlarmOptions {
  activeRuns: ActiveRuns;
  thresholdMs: number;
  writer: Pick<SlackWriter, 'channel'>;
  logger: Logger;
  metrics?: Metrics;
  /** How often runs are looked at: a tenth of the threshold by default, between 0.2 and 30 s. */
  checkEveryMs?: number;
}

interface Alert {
  /** Undefined when the run has no Slack thread: the alarm was only logged. */
  ref: MessageRef | undefined;
}

export class StallAlarm {
  readonly #alerts = new Map<string, Alert>();
  readonly #options: StallAlarmOptions;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: StallAlarmOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#timer) return;
    const every =
      this.#options.checkEveryMs ?? Math.min(30_000, Math.max(200, this.#options.thresholdMs / 10));
    this.#timer = setInterval(() => this.check(), every);
    // Watching must never be what keeps a finished process alive.
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Posts an alert for each run stalled past the threshold that has none yet; returns how many. */
  check(): number {
    const { activeRuns, thresholdMs } = this.#options;
    let raised = 0;
    for (const active of activeRuns.list()) {
      if (this.#alerts.has(active.run.runId)) continue;
      const stalledMs = activeRuns.stalledMs(active);
      if (stalledMs <= thresholdMs) continue;
      this.#raise(active, stalledMs);
      raised += 1;
    }
    return raised;
  }

  /** Call after each progress of a run: an alert it had is marked over, and the alarm re-armed. */
  progressed(active: ActiveRun, stalledMs: number): void {
    const alert = this.#alerts.get(active.run.runId);
    if (!alert) return;
    this.#alerts.delete(active.run.runId);
    this.#options.logger.info(
      { runId: active.run.runId, cluster: active.run.cluster, stalledSeconds: Math.round(stalledMs / 1000) },
      'stall over: the run made progress again',
    );
    this.#guard(active, () => alert.ref?.update(stallResolvedMessage(active, stalledMs)));
  }

  ended(runId: string): void {
    this.#alerts.delete(runId);
  }

  #raise(active: ActiveRun, stalledMs: number): void {
    const { run } = active;
    const alert: Alert = { ref: undefined };
    this.#alerts.set(run.runId, alert);
    this.#options.metrics?.stallAlarms.inc({ cluster: run.cluster });
    this.#options.logger.warn(
      {
        runId: run.runId,
        cluster: run.cluster,
        host: active.host,
        lastEvent: active.lastEvent?.type,
        stalledSeconds: Math.round(stalledMs / 1000),
      },
      'stall alarm: no progress',
    );
    if (!run.messageTs) return;
    this.#guard(active, () => {
      alert.ref = this.#options.writer
        .channel(run.channel)
        .post(stallAlertMessage(active, stalledMs), { threadTs: run.messageTs });
    });
  }

  #guard(active: ActiveRun, work: () => void): void {
    try {
      work();
    } catch (error) {
      this.#options.logger.error(
        { runId: active.run.runId, err: describeError(error) },
        'stall alarm could not be posted',
      );
    }
  }
}
