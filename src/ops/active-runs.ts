/**
 * The runs this worker is running now, and when each last made progress: any engine event counts.
 * Read by the per-run "seconds since progress" gauge and by the stall alarm. A step-mode run
 * waiting for a Continue click is waiting for a human, not stalled.
 */
import type { EngineEvent } from '../engine/events.js';
import type { RunRecord } from '../queue/contracts.js';

export interface ActiveRun {
  readonly run: RunRecord;
  readonly startedAt: number;
  lastProgressAt: number;
  /** The last event, e.g. `host_down` on `host2`, for the alarm's text. */
  lastEvent: { type: EngineEvent['type']; host?: string; at: number } | undefined;
  /** The host being worked on (between host_started and host_done). */
  host: string | undefined;
  waitingForContinue: boolean;
  /** The engine reported the run's end; the worker is only wrapping up (Slack, run record). */
  engineDone: boolean;
}

/** After these the engine does nothing more for the run: no progress is expected. */
const ENDING_EVENTS = new Set<EngineEvent['type']>([
  'finished',
  'failed',
  'aborted',
  'needs_attention',
  'suspended',
]);

export class ActiveRuns {
  readonly #runs = new Map<string, ActiveRun>();

  constructor(readonly now: () => number = Date.now) {}

  start(run: RunRecord): ActiveRun {
    const at = this.now();
    const active: ActiveRun = {
      run,
      startedAt: at,
      lastProgressAt: at,
      lastEvent: undefined,
      host: undefined,
      waitingForContinue: false,
      engineDone: false,
    };
    this.#runs.set(run.runId, active);
    return active;
  }

  progress(runId: string, event: EngineEvent): ActiveRun | undefined {
    const active = this.#runs.get(runId);
    if (!active) return undefined;
    const at = this.now();
    const host = hostOf(event);
    if (event.type === 'host_started') active.host = event.host;
    if (event.type === 'host_done') active.host = undefined;
    if (event.type === 'paused') active.waitingForContinue = true;
    if (event.type === 'continued') active.waitingForContinue = false;
    if (ENDING_EVENTS.has(event.type)) active.engineDone = true;
    active.lastProgressAt = at;
    active.lastEvent = { type: event.type, ...(host ? { host } : {}), at };
    return active;
  }

  end(runId: string): void {
    this.#runs.delete(runId);
  }

  get(runId: string): ActiveRun | undefined {
    return this.#runs.get(runId);
  }

  /** The runs still in the engine's hands. */
  list(): ActiveRun[] {
    return [...this.#runs.values()].filter((active) => !active.engineDone);
  }

  /** Milliseconds without progress; 0 while a step-mode run waits for a human or once the engine is done. */
  stalledMs(active: ActiveRun): number {
    if (active.waitingForContinue || active.engineDone) return 0;
    return Math.max(0, this.now() - active.lastProgressAt);
  }
}

/** The host an event is about: its `host`, or a migration's source. */
export function hostOf(event: EngineEvent): string | undefined {
  if ('host' in event && typeof event.host === 'string') return event.host;
  if ('from' in event && typeof event.from === 'string') return event.from;
  return undefined;
}
