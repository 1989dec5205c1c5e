/**
 * Block Kit messages, as pure functions of a run record and engine events. Everything that came
 * from outside (VM and host names, XAPI errors) is escaped, so a VM named `<!channel>` cannot ping
 * anyone. Slack's limits are respected here, once: 50 blocks, 3000 characters per text, 150 per
 * header; block ids change with the content, as Slack asks for updated messages.
 */
import { createHash } from 'node:crypto';
import type { ActionsBlock, Button, ContextBlock, KnownBlock, SectionBlock } from '@slack/types';
import type { Finding, PlannedHost, PlanSummary, TimedEvent } from '../engine/events.js';
import { formatBytes } from '../engine/format.js';
import { formatDuration } from '../errors.js';
import { FINAL_STATES, type RunRecord, type RunState } from '../queue/contracts.js';
import { SLASH_USAGE } from './command-grammar.js';

export const SLACK_LIMITS = {
  blocks: 50,
  text: 3000,
  headerText: 150,
  contextElements: 10,
  buttonText: 75,
  confirmText: 300,
} as const;

export const RUN_ACTION_IDS = ['approve', 'cancel', 'abort', 'continue', 'resume', 'finish'] as const;
export type RunActionId = (typeof RUN_ACTION_IDS)[number];

export interface SlackMessage {
  /** The notification / fallback text. */
  text: string;
  blocks: KnownBlock[];
}

export interface EphemeralMessage extends SlackMessage {
  response_type: 'ephemeral';
}

const MAX_HOST_SECTIONS = 6;
const MAX_FINDING_SECTIONS = 3;
const MIGRATIONS_SHOWN_PER_HOST = 10;

// ---------------------------------------------------------------------------------------------
// Text helpers

/** Slack mrkdwn needs exactly these three escaped; anything else is shown as typed. */
export function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A time every reader sees in their own time zone, with a UTC fallback. */
export function slackTime(iso: string, format = '{time_secs}'): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return escapeText(iso);
  const fallback = `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
  return `<!date^${Math.floor(ms / 1000)}^${format}|${fallback}>`;
}

/** Escapes free text but keeps user mentions the bot itself wrote (`<@U123>`), e.g. in a run's result. */
export function escapeKeepingMentions(text: string): string {
  return text
    .split(/(<@[UW][A-Z0-9]{2,20}>)/)
    .map((part, index) => (index % 2 === 1 ? part : escapeText(part)))
    .join('');
}

const when = (iso: string) => slackTime(iso, '{date_short_pretty} {time}');
const user = (id: string) => `<@${id.replace(/[^A-Z0-9]/gi, '')}>`;
const seconds = (s: number) => formatDuration(Math.round(s * 1000));
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function section(text: string): SectionBlock {
  return { type: 'section', text: { type: 'mrkdwn', text: clip(text, SLACK_LIMITS.text) } };
}

function context(...texts: string[]): ContextBlock {
  return {
    type: 'context',
    elements: texts
      .slice(0, SLACK_LIMITS.contextElements)
      .map((text) => ({ type: 'mrkdwn' as const, text: clip(text, SLACK_LIMITS.text) })),
  };
}

function header(text: string): KnownBlock {
  return {
    type: 'header',
    text: { type: 'plain_text', text: clip(text, SLACK_LIMITS.headerText), emoji: true },
  };
}

/** Lines packed into as few sections as fit, at most `maxSections`, then "and N more". */
function packLines(lines: string[], maxSections: number, what: string): KnownBlock[] {
  const blocks: KnownBlock[] = [];
  let current = '';
  let packed = 0;
  for (const raw of lines) {
    const line = clip(raw, SLACK_LIMITS.text);
    if (current && current.length + 1 + line.length > SLACK_LIMITS.text) {
      if (blocks.length + 1 >= maxSections) break;
      blocks.push(section(current));
      current = '';
    }
    current = current ? `${current}\n${line}` : line;
    packed += 1;
  }
  if (current) blocks.push(section(current));
  if (packed < lines.length) blocks.push(context(`…and ${lines.length - packed} more ${what}`));
  return blocks;
}

/**
 * Caps the message at 50 blocks (keeping the last ones: buttons and footers live there), and gives
 * every block an id unique to this version of the message. `text` is mrkdwn too (Slack notifies
 * the mentions in it): whatever came from outside must be escaped in it as in the blocks.
 */
function finish(kind: string, text: string, blocks: KnownBlock[]): SlackMessage {
  let kept = blocks;
  if (blocks.length > SLACK_LIMITS.blocks) {
    const tail = blocks.slice(-4);
    const head = blocks.slice(0, SLACK_LIMITS.blocks - tail.length - 1);
    kept = [...head, context(`…${blocks.length - head.length - tail.length} more blocks not shown`), ...tail];
  }
  const version = createHash('sha256').update(JSON.stringify(kept)).digest('hex').slice(0, 10);
  return {
    text: clip(text, SLACK_LIMITS.text),
    blocks: kept.map((block, index) => ({ ...block, block_id: `${kind}.${index}.${version}` })),
  };
}

function button(
  actionId: RunActionId,
  label: string,
  runId: string,
  options: {
    style?: 'primary' | 'danger';
    confirm?: { title: string; text: string; yes: string; no: string };
  } = {},
): Button {
  return {
    type: 'button',
    action_id: actionId,
    text: { type: 'plain_text', text: clip(label, SLACK_LIMITS.buttonText), emoji: true },
    value: runId,
    ...(options.style ? { style: options.style } : {}),
    ...(options.confirm
      ? {
          confirm: {
            title: { type: 'plain_text', text: clip(options.confirm.title, 100) },
            text: { type: 'mrkdwn', text: clip(options.confirm.text, SLACK_LIMITS.confirmText) },
            confirm: { type: 'plain_text', text: clip(options.confirm.yes, 30) },
            deny: { type: 'plain_text', text: clip(options.confirm.no, 30) },
            ...(options.style === 'danger' ? { style: 'danger' as const } : {}),
          },
        }
      : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// The root message: the plan, then the run's status and the buttons for its state.

export interface RootView {
  /** Step mode: the host the paused run waits to start. */
  nextHost?: string;
  /** The host being worked on. */
  currentHost?: string;
  /** The engine noticed an abort request (the record may not say by whom yet). */
  abortRequested?: boolean;
}

const STATE_TITLES: Record<RunState, string> = {
  planning: ':hourglass_flowing_sand: checking',
  dry_run: ':mag: dry run',
  refused: ':no_entry: refused',
  awaiting_approval: ':raised_hand: awaiting approval',
  cancelled: ':x: cancelled',
  expired: ':alarm_clock: expired',
  approved: ':white_check_mark: approved',
  running: ':arrows_counterclockwise: running',
  paused: ':double_vertical_bar: paused',
  needs_attention: ':warning: needs attention',
  done: ':tada: done',
  failed: ':x: failed',
  aborted: ':octagonal_sign: aborted',
  finished_by_hand: ':wrench: finished by hand',
};

export function rootMessage(run: RunRecord, view: RootView = {}): SlackMessage {
  const blocks: KnownBlock[] = [
    header(`Rolling reboot of ${run.cluster}${run.exec ? '' : ' (dry run)'}`),
    context(
      `Requested by ${user(run.requestedBy)} ${when(run.createdAt)}`,
      escapeText(describeOptions(run)),
      `run \`${escapeText(run.runId)}\``,
    ),
    section(`*Status:* ${STATE_TITLES[run.state]}\n${statusLine(run, view)}`),
  ];
  if (run.plan) blocks.push({ type: 'divider' }, ...planBlocks(run.plan));
  if (run.findings && run.findings.length > 0) blocks.push(...findingBlocks(run.findings));
  const footer = footerLines(run, view);
  if (footer.length > 0) blocks.push(context(...footer));
  const actions = actionsFor(run, view);
  if (actions) blocks.push(actions);
  return finish(
    `root-${run.state}`,
    `Rolling reboot of ${run.cluster}: ${STATE_TITLES[run.state].replace(/^:[a-z_]+: /, '')}`,
    blocks,
  );
}

function describeOptions(run: RunRecord): string {
  const o = run.options;
  return [
    run.exec ? '--exec' : 'dry run',
    `${o.threads} migrations at once`,
    o.ignoreHosts.length > 0 ? `ignoring ${o.ignoreHosts.join(', ')}` : '',
    o.restorePlacement ? 'restore placement' : '',
    o.step ? 'step mode' : '',
    o.preEmptyHook ? `pre-empty hook ${o.preEmptyHook}` : '',
    o.postEmptyHook ? `post-empty hook ${o.postEmptyHook}` : '',
  ]
    .filter(Boolean)
    .join(' · ');
}

function progressBar(done: number, total: number): string {
  if (total <= 0) return '';
  const width = Math.min(total, 20);
  const filled = Math.round((done / total) * width);
  return `${'▰'.repeat(filled)}${'▱'.repeat(width - filled)} `;
}

function blockerCount(run: RunRecord): number {
  return (run.findings ?? []).filter((f) => f.severity === 'blocker').length;
}

function statusLine(run: RunRecord, view: RootView): string {
  const result = run.result ? escapeKeepingMentions(run.result) : '';
  const progress = `${progressBar(run.hostsDone, run.hostsTotal)}hosts done ${run.hostsDone} of ${run.hostsTotal}`;
  switch (run.state) {
    case 'planning':
      return 'Checking the cluster and planning…';
    case 'dry_run': {
      const blockers = blockerCount(run);
      return blockers === 0
        ? 'Nothing was changed. Run the same command with `--exec` to reboot.'
        : `Nothing was changed. \`--exec\` would be refused: ${plural(blockers, 'blocker')} below.`;
    }
    case 'refused':
      return result || `Refused: ${plural(blockerCount(run), 'blocker')} below. Nothing was changed.`;
    case 'awaiting_approval':
      return `A second engineer must approve.${run.approvalExpiresAt ? ` The approval expires ${when(run.approvalExpiresAt)}.` : ''}`;
    case 'cancelled':
      return result || 'Cancelled. Nothing was changed.';
    case 'expired':
      return `Approval expired after ${approvalMinutes(run)} min. Nothing was changed; request again if still needed.`;
    case 'approved':
      return result || 'Queued: waiting for a worker to start.';
    case 'running':
      return `${progress}${view.currentHost ? ` · now on *${escapeText(view.currentHost)}*` : ''}`;
    case 'paused':
      return `${progress}\nStep mode: paused before *${escapeText(view.nextHost ?? 'the next host')}*. Click *Continue* to go on.`;
    case 'needs_attention':
      return `${progress}\n${result || 'The run halted.'}\n*Resume* once the host is back, or *Finish* once you have put the cluster back by hand.`;
    case 'done':
      return `${progress}${result ? `\n${result}` : ''}`;
    case 'failed':
    case 'aborted':
    case 'finished_by_hand':
      return `${progress}${result ? `\n${result}` : ''}`;
  }
}

function approvalMinutes(run: RunRecord): number {
  if (!run.approvalExpiresAt) return 0;
  return Math.round((Date.parse(run.approvalExpiresAt) - Date.parse(run.createdAt)) / 60_000);
}

function footerLines(run: RunRecord, view: RootView): string[] {
  const lines: string[] = [];
  if (run.approvedBy) {
    lines.push(`Approved by ${user(run.approvedBy)}${run.approvedAt ? ` at ${when(run.approvedAt)}` : ''}`);
  }
  if (run.abortRequestedBy && !isOver(run.state)) {
    lines.push(
      `:octagonal_sign: Abort requested by ${user(run.abortRequestedBy)}: stopping at the next safe point`,
    );
  } else if (view.abortRequested && !isOver(run.state)) {
    lines.push(':octagonal_sign: Abort requested: stopping at the next safe point');
  }
  if (run.finishedAt && isOver(run.state)) lines.push(`Ended ${when(run.finishedAt)}`);
  return lines;
}

function isOver(state: RunState): boolean {
  return FINAL_STATES.includes(state);
}

function actionsFor(run: RunRecord, view: RootView): ActionsBlock | undefined {
  const abort = button('abort', 'Abort', run.runId, {
    style: 'danger',
    confirm: {
      title: 'Abort the rolling reboot?',
      text: `The run stops at the next safe point and restores ${escapeText(run.cluster)} (HA, auto power-on, CloudStack managed state).`,
      yes: 'Abort',
      no: 'Keep going',
    },
  });
  const canAbort = !run.abortRequestedBy && !view.abortRequested;
  let elements: Button[] = [];
  switch (run.state) {
    case 'awaiting_approval':
      elements = [
        button('approve', 'Approve', run.runId, {
          style: 'primary',
          confirm: {
            title: 'Approve this reboot?',
            text: `Every host of ${escapeText(run.cluster)} is emptied and rebooted, one at a time${run.plan ? ` (${plural(run.plan.hosts.length, 'host')}, ${plural(run.plan.totalMigrations, 'live migration')})` : ''}.`,
            yes: 'Approve',
            no: 'Not yet',
          },
        }),
        button('cancel', 'Cancel', run.runId),
      ];
      break;
    case 'approved':
    case 'running':
      elements = canAbort ? [abort] : [];
      break;
    case 'paused':
      elements = [
        button('continue', 'Continue', run.runId, { style: 'primary' }),
        ...(canAbort ? [abort] : []),
      ];
      break;
    case 'needs_attention':
      elements = [
        button('resume', 'Resume', run.runId, {
          style: 'primary',
          confirm: {
            title: 'Resume the run?',
            text: 'Only once the host is back. The run goes on from its checkpoint: no host is rebooted twice.',
            yes: 'Resume',
            no: 'Not yet',
          },
        }),
        button('finish', 'Finish', run.runId, {
          confirm: {
            title: 'Mark as finished by hand?',
            text: 'Only once you have restored the cluster yourself (host enabled, HA, auto power-on, managed state). The checkpoint is deleted.',
            yes: 'Finish',
            no: 'Not yet',
          },
        }),
      ];
      break;
    default:
      elements = [];
  }
  return elements.length > 0 ? { type: 'actions', elements } : undefined;
}

// ---------------------------------------------------------------------------------------------
// Plan and findings

export function planBlocks(plan: PlanSummary): KnownBlock[] {
  const summary = section(
    [
      `*Plan:* ${plural(plan.hosts.length, 'host')}, pool master first`,
      `${plural(plan.totalMigrations, 'live migration')} (fewest possible: ${plan.optimalMigrations}), ${formatBytes(plan.memoryMoved)} to move`,
      `Estimated duration: about ${formatDuration(plan.estimatedSeconds * 1000)}`,
    ].join('\n'),
  );
  return [summary, ...packLines(plan.hosts.map(hostPlanLine), MAX_HOST_SECTIONS, 'hosts')];
}

function hostPlanLine(host: PlannedHost, index: number): string {
  const moves = host.migrations
    .slice(0, MIGRATIONS_SHOWN_PER_HOST)
    .map((m) => `${escapeText(m.vm)} → ${escapeText(m.to)}`);
  const more = host.migrations.length - moves.length;
  const list = moves.length > 0 ? `: ${moves.join(', ')}${more > 0 ? `, +${more} more` : ''}` : '';
  return `*${index + 1}. ${escapeText(host.host)}*${host.master ? ' (master)' : ''} · ${plural(host.vms, 'VM')} · ${plural(host.migrations.length, 'migration')}${list}`;
}

const SEVERITY_ICONS: Record<Finding['severity'], string> = {
  blocker: ':no_entry:',
  warning: ':warning:',
  info: ':information_source:',
};

export function findingBlocks(findings: Finding[]): KnownBlock[] {
  const order: Finding['severity'][] = ['blocker', 'warning', 'info'];
  const sorted = [...findings].sort((a, b) => order.indexOf(a.severity) - order.indexOf(b.severity));
  const blockers = findings.filter((f) => f.severity === 'blocker').length;
  const warnings = findings.filter((f) => f.severity === 'warning').length;
  const title = [
    blockers > 0 ? plural(blockers, 'blocker') : '',
    warnings > 0 ? plural(warnings, 'warning') : '',
  ]
    .filter(Boolean)
    .join(', ');
  return [
    { type: 'divider' },
    ...packLines([`*${title || 'Notes'}*`, ...sorted.map(findingLine)], MAX_FINDING_SECTIONS, 'findings'),
  ];
}

function findingLine(finding: Finding): string {
  const where = [finding.host, finding.vm]
    .filter(Boolean)
    .map((s) => escapeText(s as string))
    .join(' / ');
  return `${SEVERITY_ICONS[finding.severity]} \`${escapeText(finding.code)}\`${where ? ` ${where}` : ''}: ${escapeText(finding.message)}`;
}

// ---------------------------------------------------------------------------------------------
// Thread messages

export interface MigrationFailure {
  vm: string;
  to: string;
  error: string[];
  willRetry: boolean;
}

export type HostStep =
  | { kind: 'disabled'; at: string }
  | {
      kind: 'hook';
      at: string;
      phase: 'pre-empty' | 'post-empty';
      hook: string;
      exitCode?: number | null;
      seconds?: number;
      output?: string;
    }
  | {
      kind: 'migrations';
      at: string;
      started: number;
      done: number;
      planned: number;
      failures: MigrationFailure[];
    }
  | { kind: 'empty'; at: string; seconds: number }
  | { kind: 'rebooting'; at: string }
  | { kind: 'down'; at: string; seconds: number }
  | { kind: 'up'; at: string; seconds: number }
  | { kind: 'enabled'; at: string }
  | { kind: 'done'; at: string; seconds: number; migrations: number };

export interface HostView {
  host: string;
  index: number;
  total: number;
  vms: number;
  startedAt: string;
  status: 'in_progress' | 'done' | 'halted';
  steps: HostStep[];
}

export function hostMessage(view: HostView): SlackMessage {
  const done = view.steps.find((s): s is Extract<HostStep, { kind: 'done' }> => s.kind === 'done');
  const icon =
    view.status === 'done' ? ':white_check_mark:' : view.status === 'halted' ? ':warning:' : ':gear:';
  const title = `${icon} *Host ${view.index}/${view.total}: ${escapeText(view.host)}* · ${plural(view.vms, 'VM')}${done ? ` · done in ${seconds(done.seconds)}` : ''}`;
  const lines = [`${slackTime(view.startedAt)} started`, ...view.steps.map(hostStepLine)];
  return finish(
    'host',
    `Host ${view.index}/${view.total} ${escapeText(view.host)}: ${view.status.replace('_', ' ')}`,
    [section(title), ...packLines(lines, 6, 'steps')],
  );
}

function hostStepLine(step: HostStep): string {
  // Not in backticks: Slack shows date tokens inside code spans literally.
  const at = slackTime(step.at);
  switch (step.kind) {
    case 'disabled':
      return `${at} disabled`;
    case 'hook': {
      const name = `${step.phase} hook \`${escapeText(step.hook)}\``;
      if (step.exitCode === undefined) return `${at} ${name} running`;
      const output = step.output ? `\n\`\`\`${escapeText(clip(step.output, 500))}\`\`\`` : '';
      return `${at} ${name} exited ${step.exitCode ?? 'without a code'} after ${seconds(step.seconds ?? 0)}${output}`;
    }
    case 'migrations': {
      const failures = step.failures.map(
        (f) =>
          `\n    :x: ${escapeText(f.vm)} → ${escapeText(f.to)}: \`${escapeText(f.error.join(' '))}\`${f.willRetry ? ' (retrying)' : ''}`,
      );
      return `${at} migrations ${step.done}/${step.planned}${step.started > step.done + step.failures.length ? ` (${step.started - step.done - step.failures.length} in flight)` : ''}${failures.join('')}`;
    }
    case 'empty':
      return `${at} empty after ${seconds(step.seconds)}`;
    case 'rebooting':
      return `${at} rebooting`;
    case 'down':
      return `${at} down after ${seconds(step.seconds)}`;
    case 'up':
      return `${at} up after ${seconds(step.seconds)}`;
    case 'enabled':
      return `${at} enabled`;
    case 'done':
      return `${at} done: ${plural(step.migrations, 'migration')} in ${seconds(step.seconds)}`;
  }
}

/** A thread line for the cluster-wide steps (before and after the hosts); undefined for others. */
export function clusterStepText(event: TimedEvent): string | undefined {
  switch (event.type) {
    case 'cluster_unmanaged':
      return `CloudStack cluster ${escapeText(event.cluster)} set to Unmanaged`;
    case 'ha_disabled':
      return `Pool HA disabled (heartbeat SRs ${escapeText(event.heartbeatSrs.join(', ') || 'none')}; restored afterwards)`;
    case 'auto_poweron_disabled':
      return 'Pool auto power-on turned off (restored afterwards)';
    case 'restoring':
      return `Restoring: ${escapeText(event.what)}`;
    case 'ha_restored':
      return `Pool HA restored (heartbeat SRs ${escapeText(event.heartbeatSrs.join(', ') || 'none')})`;
    case 'auto_poweron_restored':
      return 'Pool auto power-on restored';
    case 'cluster_managed':
      return `CloudStack cluster ${escapeText(event.cluster)} Managed again, ${plural(event.hostsUp, 'host')} Up`;
    case 'placement_restored': {
      const notMoved = event.notMoved.map(
        (n) => `\n    ${escapeText(n.vm)} stays away from ${escapeText(n.home)}: ${escapeText(n.reason)}`,
      );
      return `Placement restored: ${plural(event.moved, 'VM')} moved home${notMoved.length > 0 ? `, ${notMoved.length} not moved:${notMoved.join('')}` : ''}`;
    }
    default:
      return undefined;
  }
}

export function stepLogMessage(title: string, lines: Array<{ at: string; text: string }>): SlackMessage {
  return finish('steps', escapeText(title), [
    section(`*${escapeText(title)}*`),
    ...packLines(
      lines.map((line) => `${slackTime(line.at)} ${line.text}`),
      8,
      'steps',
    ),
  ]);
}

export function startedMessage(options: { resumed: boolean; worker?: string; at: string }): SlackMessage {
  const text = options.resumed
    ? `:arrow_forward: Resumed from its checkpoint${options.worker ? ` on worker \`${escapeText(options.worker)}\`` : ''} ${when(options.at)}`
    : `:arrow_forward: Started${options.worker ? ` on worker \`${escapeText(options.worker)}\`` : ''} ${when(options.at)}`;
  return finish('started', options.resumed ? 'Run resumed' : 'Run started', [section(text)]);
}

export function noticeMessage(icon: string, text: string): SlackMessage {
  return finish('notice', escapeText(text), [section(`${icon} ${escapeText(text)}`)]);
}

/** "<@U> approved the run at …" in the thread: who did what, for the audit trail. */
export function actorNotice(icon: string, userId: string, text: string, at: string): SlackMessage {
  return finish('actor', `${user(userId)} ${text}`, [
    section(`${icon} ${user(userId)} ${escapeText(text)} ${when(at)}`),
  ]);
}

function leftChangedBlocks(leftChanged: string[]): KnownBlock[] {
  if (leftChanged.length === 0) return [section('Nothing is left changed.')];
  return packLines(
    ['*Left changed (needs a human):*', ...leftChanged.map((line) => `• ${escapeText(line)}`)],
    6,
    'items',
  );
}

export function abortedMessage(
  event: Extract<TimedEvent, { type: 'aborted' }>,
  abortedBy?: string,
): SlackMessage {
  return finish('aborted', 'Rolling reboot aborted', [
    section(
      `:octagonal_sign: *Aborted*${abortedBy ? ` by ${user(abortedBy)}` : ''} ${when(event.at)}. Hosts rebooted before the abort: ${
        event.hostsDone.length > 0 ? escapeText(event.hostsDone.join(', ')) : 'none'
      }.`,
    ),
    ...leftChangedBlocks(event.leftChanged),
  ]);
}

export function failedMessage(event: Extract<TimedEvent, { type: 'failed' }>): SlackMessage {
  return finish('failed', `Rolling reboot failed: ${escapeText(event.reason)}`, [
    section(`:x: *Failed* ${when(event.at)}: ${escapeText(event.reason)}`),
    section(`\`\`\`${escapeText(clip(event.error.join(' '), 2800))}\`\`\``),
    ...leftChangedBlocks(event.leftChanged),
  ]);
}

export function needsAttentionMessage(event: Extract<TimedEvent, { type: 'needs_attention' }>): SlackMessage {
  return finish('attention', `${escapeText(event.host)} needs attention`, [
    section(
      `:warning: *${escapeText(event.host)} needs attention* ${when(event.at)}: ${escapeText(event.reason)}\nThe run halted and goes no further. Fix the host, then click *Resume* on the run's message, or *Finish* once you have put the cluster back by hand.`,
    ),
    ...leftChangedBlocks(event.leftChanged),
  ]);
}

export function summaryMessage(event: Extract<TimedEvent, { type: 'finished' }>): SlackMessage {
  const hosts = event.hosts.map((h) => `• ${escapeText(h.host)}: ${seconds(h.seconds)}`);
  const attention = event.attention.map((line) => `• :warning: ${escapeText(line)}`);
  return finish('summary', `Rolling reboot done in ${seconds(event.seconds)}`, [
    section(
      `:tada: *Done* in ${seconds(event.seconds)}: ${plural(event.hosts.length, 'host')} rebooted, ${plural(event.migrations, 'live migration')}.`,
    ),
    ...packLines(hosts, 4, 'hosts'),
    ...(attention.length > 0 ? packLines(['*Needs a human:*', ...attention], 4, 'items') : []),
  ]);
}

export function suspendedMessage(event: Extract<TimedEvent, { type: 'suspended' }>): SlackMessage {
  return noticeMessage(
    ':pause_button:',
    `Worker shutting down: suspended before ${event.nextHost}. Another worker resumes from the checkpoint.`,
  );
}

// ---------------------------------------------------------------------------------------------
// Replies to one person (ephemeral)

function ephemeral(kind: string, text: string, blocks: KnownBlock[]): EphemeralMessage {
  return { response_type: 'ephemeral', ...finish(kind, text, blocks) };
}

export function usageMessage(error?: string): EphemeralMessage {
  return ephemeral('usage', error ? `Invalid command: ${escapeText(error)}` : 'How to use /reboot-cluster', [
    ...(error ? [section(`:warning: ${escapeText(error)}`)] : []),
    section(SLASH_USAGE),
  ]);
}

export function refusalMessage(reason: string): EphemeralMessage {
  return ephemeral('refusal', escapeText(reason), [section(`:no_entry: ${escapeText(reason)}`)]);
}

/** Like `refusalMessage`, for reasons that carry Slack markup the bot wrote itself (mentions, links). */
export function refusalMarkup(mrkdwn: string): EphemeralMessage {
  return ephemeral('refusal', mrkdwn.replace(/<[^|>]*\|([^>]*)>/g, '$1'), [section(`:no_entry: ${mrkdwn}`)]);
}

export function infoMessage(text: string): EphemeralMessage {
  return ephemeral('info', escapeText(text), [section(escapeText(text))]);
}

export function busyMessage(active: RunRecord, permalink?: string): EphemeralMessage {
  const link = permalink ? `<${permalink}|this run>` : `run \`${escapeText(active.runId)}\``;
  return ephemeral('busy', `${active.cluster} already has a run in progress`, [
    section(
      `:no_entry: *${escapeText(active.cluster)}* already has a run (${STATE_TITLES[active.state]}), requested by ${user(active.requestedBy)}: see ${link}. One run per cluster at a time.`,
    ),
  ]);
}

export interface StatusEntry {
  run: RunRecord;
  permalink?: string;
}

export function statusListing(entries: StatusEntry[], cluster?: string): EphemeralMessage {
  const scope = cluster ? ` for ${escapeText(cluster)}` : '';
  if (entries.length === 0) {
    return ephemeral('status', `No runs${scope}`, [section(`No runs${scope} yet.`)]);
  }
  const active = entries.filter((e) => !isOver(e.run.state));
  const recent = entries.filter((e) => isOver(e.run.state));
  const line = ({ run, permalink }: StatusEntry) => {
    const progress = ['running', 'paused', 'needs_attention', 'done', 'failed', 'aborted'].includes(run.state)
      ? ` · ${run.hostsDone}/${run.hostsTotal} hosts`
      : '';
    const link = permalink ? ` · <${permalink}|thread>` : '';
    return `• *${escapeText(run.cluster)}* ${STATE_TITLES[run.state]}${progress}${run.exec ? '' : ' (dry run)'} · ${user(run.requestedBy)} ${when(run.createdAt)}${link}`;
  };
  return ephemeral('status', `Runs${scope}: ${active.length} active, ${recent.length} recent`, [
    section(`*Active runs${scope}:* ${active.length === 0 ? 'none' : ''}`),
    ...packLines(active.map(line), 10, 'runs'),
    section(`*Recent runs${scope}:* ${recent.length === 0 ? 'none' : ''}`),
    ...packLines(recent.map(line), 10, 'runs'),
  ]);
}
