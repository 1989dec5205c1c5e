/**
 * What the Slack side and the queue side agree on: a run's record and its state machine, the
 * stores that keep them in Redis, the audit log, and how a worker reports a run's progress.
 * Implementations: `src/queue/*` (Redis, BullMQ) and `src/slack/*` (the reporter).
 */
import type { Finding, PlanSummary, TimedEvent } from '../engine/events.js';
import type { RunOutcome } from '../engine/outcome.js';

/**
 * planning -> awaiting_approval -> approved -> running -> done | failed | aborted | needs_attention
 * planning -> dry_run | refused;  awaiting_approval -> cancelled | expired
 * needs_attention -> approved (Resume: queued again) | finished_by_hand (Finish)
 * running <-> paused (step mode)
 */
export const RUN_STATES = [
  'planning',
  'dry_run',
  'refused',
  'awaiting_approval',
  'cancelled',
  'expired',
  'approved',
  'running',
  'paused',
  'needs_attention',
  'done',
  'failed',
  'aborted',
  'finished_by_hand',
] as const;
export type RunState = (typeof RUN_STATES)[number];

export const ACTIVE_STATES: readonly RunState[] = ['approved', 'running', 'paused', 'needs_attention'];
export const FINAL_STATES: readonly RunState[] = [
  'dry_run',
  'refused',
  'cancelled',
  'expired',
  'done',
  'failed',
  'aborted',
  'finished_by_hand',
];

export interface RunOptions {
  threads: number;
  ignoreHosts: string[];
  restorePlacement: boolean;
  step: boolean;
  preEmptyHook?: string;
  postEmptyHook?: string;
}

export interface RunRecord {
  runId: string;
  cluster: string;
  exec: boolean;
  options: RunOptions;
  state: RunState;
  /** Slack user ids (U… or W…), team id and channel. */
  requestedBy: string;
  teamId?: string;
  channel: string;
  /** The plan / status message: the root of the run's thread. */
  messageTs?: string;
  createdAt: string;
  approvalExpiresAt?: string;
  approvedBy?: string;
  approvedAt?: string;
  abortRequestedBy?: string;
  hostsTotal: number;
  hostsDone: number;
  /** The plan and findings shown when the run was requested. */
  plan?: PlanSummary;
  findings?: Finding[];
  finishedAt?: string;
  /** One line: what the run ended with. */
  result?: string;
  /** Worker that runs it now (host:pid), for status and debugging. */
  worker?: string;
}

export type TransitionResult = { ok: true; record: RunRecord } | { ok: false; record: RunRecord | undefined };

export interface RunStore {
  create(record: RunRecord): Promise<void>;
  get(runId: string): Promise<RunRecord | undefined>;
  /** Changes fields other than `state`. */
  update(runId: string, patch: Partial<Omit<RunRecord, 'runId' | 'state'>>): Promise<RunRecord | undefined>;
  /**
   * Atomic compare-and-set of the state (one Redis script): succeeds only when the run is in one of
   * `from`. This is what makes double and concurrent clicks produce exactly one approval.
   */
  transition(
    runId: string,
    from: readonly RunState[],
    to: RunState,
    patch?: Partial<Omit<RunRecord, 'runId' | 'state'>>,
  ): Promise<TransitionResult>;
  requestAbort(runId: string, by: string): Promise<void>;
  isAbortRequested(runId: string): Promise<boolean>;
  /** Step mode: one Continue click lets the run start one more host. */
  grantContinue(runId: string, by: string): Promise<void>;
  takeContinue(runId: string): Promise<boolean>;
  /** Newest first; only this cluster's when given. */
  listRecent(options: { cluster?: string; limit: number }): Promise<RunRecord[]>;
  /** The oldest run holding this cluster (planning, awaiting approval or active), if any. */
  activeRun(cluster: string): Promise<RunRecord | undefined>;
  /**
   * Every run of this cluster that is planning, awaiting approval or active, oldest first, however
   * many newer requests came after it (kept in a per-cluster index, not found by scanning).
   */
  busyRuns(cluster: string): Promise<RunRecord[]>;
}

export interface AuditEntry {
  at: string;
  runId?: string;
  cluster?: string;
  /** Slack user id, or `worker:<host:pid>` / `system`. */
  actor: string;
  /** e.g. request, plan_posted, approve, approve_refused, cancel, abort, continue, resume, finish,
   * job_started, host_done, run_finished, refusal, step. */
  action: string;
  detail?: Record<string, unknown>;
}

export interface AuditLog {
  append(entry: Omit<AuditEntry, 'at'>): Promise<void>;
  /** In order; one run's entries when `runId` is given. */
  list(options?: { runId?: string; limit?: number }): Promise<AuditEntry[]>;
}

/** How a worker tells the outside (Slack) about a run. Must never throw into the engine. */
export interface RunReporter {
  started(run: RunRecord, resumed: boolean): Promise<void>;
  event(run: RunRecord, event: TimedEvent): void;
  finished(run: RunRecord, outcome: RunOutcome): Promise<void>;
  /** Resolves when everything queued for Slack has been sent (or given up on). */
  flush(timeoutMs: number): Promise<void>;
}

export interface RunQueue {
  enqueue(runId: string): Promise<void>;
  close(): Promise<void>;
}

/** States that hold a cluster: a second request for it is refused meanwhile. */
export function isBusyState(state: RunState): boolean {
  return ACTIVE_STATES.includes(state) || state === 'awaiting_approval' || state === 'planning';
}

export function isFinal(state: RunState): boolean {
  return FINAL_STATES.includes(state);
}
