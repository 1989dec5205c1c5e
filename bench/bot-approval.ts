/**
 * From an approver's click to the first host disabled in the lab, through the whole product: Bolt
 * handler, approval, BullMQ job, worker, pre-flight, cluster preparation. Times are taken where
 * things happen: the click leaves this process, the lab records what the worker did to it. The
 * run then finishes and its Slack traffic is counted.
 */
import type { Operation } from '../lab/operation-log.js';
import type { RecordedCall } from '../test/support/slack-api-server.js';
import {
  APPROVER,
  type BotFixture,
  OPS_CHANNEL,
  REQUESTER,
  settled,
  waitForRunState,
} from './bot-fixture.js';
import { maxInWindow, minGap, round } from './stats.js';

export interface ApprovalSample {
  clickAnsweredMs: number;
  /** Click → the worker's first CloudStack call (job queued, picked up, pre-flight begun). */
  toFirstCloudStackCallMs: number;
  toUnmanageRequestedMs: number;
  toHaDisabledMs: number;
  toFirstHostDisabledMs: number;
  runState: string;
  invariantsHeld: boolean;
  hosts: number;
  slack: SlackTraffic;
}

export interface SlackTraffic {
  calls: number;
  posts: number;
  updates: number;
  callsPerHost: number;
  /** The most calls to one channel within any second, and the shortest gap between two. */
  maxPerChannelIn1s: number;
  minGapMs: number;
}

export async function measureApprovals(fixture: BotFixture, samples: number): Promise<ApprovalSample[]> {
  const results: ApprovalSample[] = [];
  for (let i = 0; i < samples; i++) results.push(await oneApproval(fixture, i));
  return results;
}

async function oneApproval(fixture: BotFixture, index: number): Promise<ApprovalSample> {
  const { slack, lab, requester } = fixture;
  const rootsBefore = roots(fixture).length;
  await requester.command({
    text: 'CLUSTER-1 --exec',
    userId: REQUESTER,
    channelId: OPS_CHANNEL,
    responseUrl: slack.responseUrl(`exec-${index}`),
  });
  await slack.waitFor(
    () => roots(fixture).length > rootsBefore && approveValue(roots(fixture).at(-1)) !== undefined,
    60_000,
  );
  const plan = roots(fixture).at(-1);
  const runId = approveValue(plan) as string;

  const seen: Array<{ op: Operation; wall: number }> = [];
  const unsubscribe = lab.log.subscribe((op) => seen.push({ op, wall: Date.now() }));
  const clickAt = Date.now();
  try {
    const answer = await requester.click({
      actionId: 'approve',
      value: runId,
      userId: APPROVER,
      channelId: OPS_CHANNEL,
      messageTs: plan?.ts as string,
      responseUrl: slack.responseUrl(`approve-${index}`),
    });
    const run = await waitForRunState(
      fixture.runs,
      runId,
      ['done', 'failed', 'aborted', 'needs_attention'],
      120_000,
    );
    // The worker flushes the thread at the end of a run; the writer spaces calls, so wait for quiet.
    await settled(() => slack.calls().length, 2_000, 30_000);
    const first = (match: (op: Operation) => boolean) => {
      const found = seen.find((s) => match(s.op));
      return found ? found.wall - clickAt : Number.NaN;
    };
    const calls = slack
      .calls()
      .filter((c) => c.at >= clickAt && String(c.body.channel ?? '') === OPS_CHANNEL && isChat(c));
    return {
      clickAnsweredMs: round(answer.ms, 1),
      toFirstCloudStackCallMs: first((op) => op.kind === 'cloudstack.call'),
      toUnmanageRequestedMs: first(
        (op) => op.kind === 'cloudstack.call' && (op.detail?.command as string) === 'updateCluster',
      ),
      toHaDisabledMs: first((op) => op.kind === 'pool.ha_disabled'),
      toFirstHostDisabledMs: first((op) => op.kind === 'host.disabled'),
      runState: run.state,
      invariantsHeld: lab.checkInvariants().ok,
      hosts: lab.info.hosts.length,
      slack: slackTraffic(calls, lab.info.hosts.length),
    };
  } finally {
    unsubscribe();
  }
}

export function isChat(call: RecordedCall): boolean {
  return call.method === 'chat.postMessage' || call.method === 'chat.update';
}

export function slackTraffic(calls: readonly RecordedCall[], hosts: number): SlackTraffic {
  const byChannel = new Map<string, number[]>();
  for (const call of calls) {
    const channel = String(call.body.channel ?? '');
    byChannel.set(channel, [...(byChannel.get(channel) ?? []), call.at]);
  }
  const perChannel = [...byChannel.values()];
  const gaps = perChannel.map((times) => minGap(times)).filter((gap) => !Number.isNaN(gap));
  return {
    calls: calls.length,
    posts: calls.filter((c) => c.method === 'chat.postMessage').length,
    updates: calls.filter((c) => c.method === 'chat.update').length,
    callsPerHost: round(calls.length / Math.max(1, hosts), 2),
    maxPerChannelIn1s: Math.max(0, ...perChannel.map((times) => maxInWindow(times, 1_000))),
    minGapMs: gaps.length > 0 ? Math.min(...gaps) : Number.NaN,
  };
}

function roots(fixture: BotFixture) {
  return fixture.slack.messages({ channel: OPS_CHANNEL }).filter((m) => !m.threadTs);
}

function approveValue(message: { blocks: unknown[] } | undefined): string | undefined {
  for (const block of (message?.blocks ?? []) as Array<{
    type: string;
    elements?: Array<{ action_id?: string; value?: string }>;
  }>) {
    if (block.type !== 'actions') continue;
    const button = block.elements?.find((element) => element.action_id === 'approve');
    if (button?.value) return button.value;
  }
  return undefined;
}
