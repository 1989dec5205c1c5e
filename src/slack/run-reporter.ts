/**
 * Renders a run's engine events into its Slack thread: the root message (plan, status, progress,
 * buttons) is updated in place, each host gets one message updated as it goes, the cluster-wide
 * steps get one message before and one after the hosts, and the endings are posted (and shown in
 * the channel). Everything goes through the writer: the engine never waits for Slack, and nothing
 * here throws into it.
 */
import type { TimedEvent } from '../engine/events.js';
import type { RunOutcome } from '../engine/outcome.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { isFinal, type RunRecord, type RunReporter, type RunState } from '../queue/contracts.js';
import {
  abortedMessage,
  clusterStepText,
  failedMessage,
  type HostStep,
  type HostView,
  hostMessage,
  needsAttentionMessage,
  noticeMessage,
  type RootView,
  rootMessage,
  startedMessage,
  stepLogMessage,
  summaryMessage,
  suspendedMessage,
} from './blocks.js';
import type { MessageContent, MessageRef, SlackWriter } from './slack-writer.js';

export interface SlackRunReporterOptions {
  writer: SlackWriter;
  logger?: Logger;
  /** This worker's name (host:pid), shown when a run starts. */
  worker?: string;
}

const PREPARE_EVENTS = new Set(['cluster_unmanaged', 'ha_disabled', 'auto_poweron_disabled']);
const RESTORE_EVENTS = new Set([
  'restoring',
  'ha_restored',
  'auto_poweron_restored',
  'cluster_managed',
  'placement_restored',
]);

export function createSlackRunReporter(options: SlackRunReporterOptions): (run: RunRecord) => RunReporter {
  return (run) => new ThreadReporter(run, options);
}

interface StepLog {
  title: string;
  ref: MessageRef;
  lines: Array<{ at: string; text: string }>;
}

class ThreadReporter implements RunReporter {
  #run: RunRecord;
  readonly #view: RootView = {};
  readonly #hosts = new Map<string, { view: HostView; ref: MessageRef }>();
  readonly #stepLogs = new Map<'prepare' | 'restore', StepLog>();
  readonly #root: MessageRef | undefined;

  constructor(
    run: RunRecord,
    private readonly options: SlackRunReporterOptions,
  ) {
    this.#run = run;
    this.#root = run.messageTs ? options.writer.channel(run.channel).message(run.messageTs) : undefined;
    if (!this.#root) options.logger?.warn({ runId: run.runId }, 'run has no Slack message: not reporting it');
  }

  async started(run: RunRecord, resumed: boolean): Promise<void> {
    this.#guard('started', () => {
      this.#run = { ...run, state: 'running' };
      this.#reply(startedMessage({ resumed, worker: this.options.worker, at: new Date().toISOString() }));
      this.#updateRoot();
    });
  }

  event(run: RunRecord, event: TimedEvent): void {
    this.#guard(event.type, () => {
      // The worker's record may lag the events: progress and state are what the events said.
      this.#run = {
        ...run,
        state: this.#run.state,
        hostsDone: this.#run.hostsDone,
        hostsTotal: this.#run.hostsTotal,
        result: this.#run.result ?? run.result,
      };
      this.#apply(event);
    });
  }

  async finished(run: RunRecord, outcome: RunOutcome): Promise<void> {
    this.#guard('finished', () => {
      const state = isFinal(run.state) || run.state === 'needs_attention' ? run.state : stateOf(outcome);
      this.#run = {
        ...run,
        state: state ?? this.#run.state,
        hostsDone: Math.max(run.hostsDone, this.#run.hostsDone),
        hostsTotal: run.hostsTotal || this.#run.hostsTotal,
        result: run.result ?? this.#run.result ?? resultOf(outcome),
      };
      if (outcome.status === 'suspended') this.#view.currentHost = undefined;
      this.#updateRoot();
    });
  }

  flush(timeoutMs: number): Promise<void> {
    return this.options.writer.flush(timeoutMs);
  }

  #apply(event: TimedEvent): void {
    if (PREPARE_EVENTS.has(event.type) || RESTORE_EVENTS.has(event.type)) {
      const text = clusterStepText(event);
      if (text) this.#logStep(PREPARE_EVENTS.has(event.type) ? 'prepare' : 'restore', event.at, text);
      return;
    }
    const step = hostStepOf(event);
    if (step) {
      this.#hostStep(step.host, step.step);
      return;
    }
    switch (event.type) {
      case 'migration_started':
      case 'migration_finished':
      case 'migration_failed':
        this.#migration(event);
        return;
      case 'plan':
        if (this.#run.hostsTotal === 0) this.#setRoot({ hostsTotal: event.plan.hosts.length });
        return;
      case 'host_started':
        this.#startHost(event);
        return;
      case 'host_done': {
        const host = this.#hosts.get(event.host);
        if (host) host.view.status = 'done';
        this.#hostStep(event.host, {
          kind: 'done',
          at: event.at,
          seconds: event.seconds,
          migrations: event.migrations,
        });
        this.#view.currentHost = undefined;
        this.#setRoot({ hostsDone: Math.max(this.#run.hostsDone, event.index), hostsTotal: event.total });
        return;
      }
      case 'paused':
        this.#view.nextHost = event.nextHost;
        this.#setRoot({ state: 'paused' });
        return;
      case 'continued':
        this.#view.nextHost = undefined;
        this.#setRoot({ state: 'running' });
        return;
      case 'abort_requested':
        this.#view.abortRequested = true;
        this.#reply(noticeMessage(':octagonal_sign:', 'Abort requested: stopping at the next safe point'));
        this.#updateRoot();
        return;
      case 'suspended':
        this.#reply(suspendedMessage(event));
        return;
      case 'warning':
        this.#reply(noticeMessage(':warning:', event.message));
        return;
      case 'aborted':
        this.#reply(abortedMessage(event, this.#run.abortRequestedBy), true);
        this.#setRoot({ state: 'aborted', result: 'Aborted; the cluster was put back as it was.' });
        return;
      case 'failed':
        this.#reply(failedMessage(event), true);
        this.#setRoot({ state: 'failed', result: event.reason });
        return;
      case 'needs_attention': {
        const host = this.#hosts.get(event.host);
        if (host) {
          host.view.status = 'halted';
          host.ref.update(hostMessage(host.view));
        }
        this.#reply(needsAttentionMessage(event), true);
        this.#setRoot({ state: 'needs_attention', result: `${event.host}: ${event.reason}` });
        return;
      }
      case 'finished':
        this.#reply(summaryMessage(event), true);
        this.#setRoot({
          state: 'done',
          hostsDone: event.hosts.length,
          result:
            event.attention.length > 0
              ? `Done; ${event.attention.length} item(s) need a human (see the thread).`
              : undefined,
        });
        return;
      default:
        return;
    }
  }

  #startHost(event: Extract<TimedEvent, { type: 'host_started' }>): void {
    const view: HostView = {
      host: event.host,
      index: event.index,
      total: event.total,
      vms: event.vms,
      startedAt: event.at,
      status: 'in_progress',
      steps: [],
    };
    const ref = this.#channel()?.post(hostMessage(view), { threadTs: this.#run.messageTs });
    if (ref) this.#hosts.set(event.host, { view, ref });
    this.#view.currentHost = event.host;
    this.#view.nextHost = undefined;
    this.#setRoot({ state: 'running', hostsTotal: event.total });
  }

  #hostStep(hostName: string, step: HostStep): void {
    const host = this.#hosts.get(hostName);
    if (!host) return;
    const steps = host.view.steps;
    // A hook's "finished" replaces its "started" line.
    const last = steps[steps.length - 1];
    if (
      step.kind === 'hook' &&
      last?.kind === 'hook' &&
      last.hook === step.hook &&
      last.exitCode === undefined
    ) {
      steps[steps.length - 1] = step;
    } else {
      steps.push(step);
    }
    host.ref.update(hostMessage(host.view));
  }

  #migration(
    event: Extract<TimedEvent, { type: 'migration_started' | 'migration_finished' | 'migration_failed' }>,
  ): void {
    const host = this.#hosts.get(event.from);
    if (!host) return;
    let step = host.view.steps.find(
      (s): s is Extract<HostStep, { kind: 'migrations' }> => s.kind === 'migrations',
    );
    if (!step) {
      const planned = this.#run.plan?.hosts.find((h) => h.host === event.from)?.migrations.length;
      step = {
        kind: 'migrations',
        at: event.at,
        started: 0,
        done: 0,
        planned: planned ?? host.view.vms,
        failures: [],
      };
      host.view.steps.push(step);
    }
    if (event.type === 'migration_started') {
      step.started += 1;
      // A retry is a new attempt of the same VM: it no longer counts as failed.
      step.failures = step.failures.filter((f) => f.vm !== event.vm || !f.willRetry);
    } else if (event.type === 'migration_finished') {
      step.done += 1;
    } else {
      step.failures.push({ vm: event.vm, to: event.to, error: event.error, willRetry: event.willRetry });
    }
    step.planned = Math.max(step.planned, step.done);
    host.ref.update(hostMessage(host.view));
  }

  #logStep(which: 'prepare' | 'restore', at: string, text: string): void {
    const log = this.#stepLogs.get(which);
    const title = which === 'prepare' ? 'Preparing the cluster' : 'Restoring the cluster';
    if (!log) {
      const lines = [{ at, text }];
      const ref = this.#channel()?.post(stepLogMessage(title, lines), { threadTs: this.#run.messageTs });
      if (!ref) return;
      this.#stepLogs.set(which, { title, ref, lines });
      return;
    }
    log.lines.push({ at, text });
    log.ref.update(stepLogMessage(log.title, log.lines));
  }

  #setRoot(patch: Partial<Pick<RunRecord, 'state' | 'hostsDone' | 'hostsTotal' | 'result'>>): void {
    this.#run = { ...this.#run, ...patch };
    this.#updateRoot();
  }

  #updateRoot(): void {
    this.#root?.update(rootMessage(this.#run, this.#view));
  }

  #reply(content: MessageContent, broadcast = false): void {
    this.#channel()?.post(content, { threadTs: this.#run.messageTs, broadcast });
  }

  #channel() {
    return this.#root && this.#run.messageTs ? this.options.writer.channel(this.#run.channel) : undefined;
  }

  #guard(what: string, work: () => void): void {
    try {
      work();
    } catch (error) {
      // A rendering bug must cost a Slack message, never a host.
      this.options.logger?.error(
        { runId: this.#run.runId, what, error: describeError(error) },
        'Slack report failed',
      );
    }
  }
}

/** The host steps that are one line each in the host's message. */
function hostStepOf(event: TimedEvent): { host: string; step: HostStep } | undefined {
  const at = event.at;
  switch (event.type) {
    case 'host_disabled':
      return { host: event.host, step: { kind: 'disabled', at } };
    case 'hook_started':
      return { host: event.host, step: { kind: 'hook', at, phase: event.phase, hook: event.hook } };
    case 'hook_finished':
      return {
        host: event.host,
        step: {
          kind: 'hook',
          at,
          phase: event.phase,
          hook: event.hook,
          exitCode: event.exitCode,
          seconds: event.seconds,
          output: event.output,
        },
      };
    case 'host_empty':
      return { host: event.host, step: { kind: 'empty', at, seconds: event.seconds } };
    case 'host_rebooting':
      return { host: event.host, step: { kind: 'rebooting', at } };
    case 'host_down':
      return { host: event.host, step: { kind: 'down', at, seconds: event.seconds } };
    case 'host_up':
      return { host: event.host, step: { kind: 'up', at, seconds: event.seconds } };
    case 'host_enabled':
      return { host: event.host, step: { kind: 'enabled', at } };
    default:
      return undefined;
  }
}

function stateOf(outcome: RunOutcome): RunState | undefined {
  switch (outcome.status) {
    case 'done':
      return 'done';
    case 'aborted':
      return 'aborted';
    case 'failed':
      return 'failed';
    case 'needs_attention':
      return 'needs_attention';
    case 'refused':
      return 'refused';
    case 'dry_run':
      return 'dry_run';
    default:
      // stopped / suspended: another worker picks the run up; its state is not an ending.
      return undefined;
  }
}

function resultOf(outcome: RunOutcome): string | undefined {
  switch (outcome.status) {
    case 'failed':
    case 'refused':
      return outcome.reason;
    case 'needs_attention':
      return `${outcome.host}: ${outcome.reason}`;
    case 'suspended':
      return `Worker stopped before ${outcome.nextHost}; another worker resumes from the checkpoint.`;
    case 'stopped':
      return `Stopped at once. Left changed: ${outcome.leftChanged.join('; ') || 'nothing'}`;
    default:
      return undefined;
  }
}
