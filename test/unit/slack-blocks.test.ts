import type { KnownBlock } from '@slack/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Finding, PlanSummary } from '../../src/engine/events.js';
import type { RunRecord } from '../../src/queue/contracts.js';
import {
  busyMessage,
  type HostView,
  hostMessage,
  rootMessage,
  SLACK_LIMITS,
  type SlackMessage,
  statusListing,
  summaryMessage,
  usageMessage,
} from '../../src/slack/blocks.js';

const GiB = 2 ** 30;
const plan: PlanSummary = {
  cluster: 'CLUSTER-1',
  hosts: [
    { host: 'xs-1', master: true, vms: 2, migrations: [{ vm: 'web-1', to: 'xs-2', memory: 2 * GiB }] },
    { host: 'xs-2', master: false, vms: 1, migrations: [{ vm: 'db-1', to: 'xs-1', memory: 4 * GiB }] },
    { host: 'xs-3', master: false, vms: 0, migrations: [] },
  ],
  totalMigrations: 2,
  optimalMigrations: 2,
  memoryMoved: 6 * GiB,
  estimatedSeconds: 960,
};

function run(patch: Partial<RunRecord> = {}): RunRecord {
  return {
    runId: 'run-1',
    cluster: 'CLUSTER-1',
    exec: true,
    options: { threads: 5, ignoreHosts: [], restorePlacement: false, step: false },
    state: 'awaiting_approval',
    requestedBy: 'UREQ',
    channel: 'COPS',
    messageTs: '1.000001',
    createdAt: '2026-11-24T10:00:00.000Z',
    approvalExpiresAt: '2026-11-24T10:15:00.000Z',
    hostsTotal: 3,
    hostsDone: 0,
    plan,
    findings: [],
    ...patch,
  };
}

type AnyBlock = KnownBlock & {
  block_id?: string;
  elements?: Array<Record<string, unknown>>;
  text?: { text: string };
};

const json = (message: SlackMessage) => JSON.stringify(message.blocks);
const buttons = (message: SlackMessage) =>
  (message.blocks as AnyBlock[]).filter((b) => b.type === 'actions').flatMap((b) => b.elements ?? []);

/** Every text in the message, wherever it sits. */
function texts(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return [];
  const own =
    'text' in value && typeof (value as { text: unknown }).text === 'string'
      ? [(value as { text: string }).text]
      : [];
  return [...own, ...Object.values(value).flatMap(texts)];
}

function expectWithinLimits(message: SlackMessage): void {
  expect(message.blocks.length).toBeLessThanOrEqual(SLACK_LIMITS.blocks);
  for (const text of texts(message.blocks)) expect(text.length).toBeLessThanOrEqual(SLACK_LIMITS.text);
  for (const block of message.blocks as AnyBlock[]) {
    if (block.type === 'header') expect(block.text?.text.length).toBeLessThanOrEqual(SLACK_LIMITS.headerText);
  }
  const ids = (message.blocks as AnyBlock[]).map((b) => b.block_id);
  expect(new Set(ids).size).toBe(ids.length);
}

describe('the root message', () => {
  it('shows the plan with Approve (primary, with a confirm dialog) and Cancel while awaiting approval', () => {
    const message = rootMessage(run());
    expect(json(message)).toContain('xs-1');
    expect(json(message)).toContain('web-1 → xs-2');
    expect(json(message)).toContain('(master)');
    expect(json(message)).toContain('about 16 min');
    expect(buttons(message)).toEqual([
      expect.objectContaining({
        action_id: 'approve',
        style: 'primary',
        value: 'run-1',
        confirm: expect.any(Object),
      }),
      expect.objectContaining({ action_id: 'cancel', value: 'run-1' }),
    ]);
    expectWithinLimits(message);
  });

  it('after approval: "Approved by" and an Abort button (danger, confirm), no Approve', () => {
    const message = rootMessage(
      run({ state: 'approved', approvedBy: 'UAPP', approvedAt: '2026-11-24T10:05:00.000Z' }),
    );
    expect(json(message)).toContain('Approved by <@UAPP> at <!date^');
    expect(buttons(message)).toEqual([
      expect.objectContaining({
        action_id: 'abort',
        style: 'danger',
        confirm: expect.objectContaining({ style: 'danger' }),
      }),
    ]);
  });

  it('per state: progress with Abort while running, Continue when paused, Resume / Finish when it needs attention', () => {
    const running = rootMessage(run({ state: 'running', hostsDone: 1, approvedBy: 'UAPP' }), {
      currentHost: 'xs-2',
    });
    expect(json(running)).toContain('hosts done 1 of 3');
    expect(json(running)).toContain('now on *xs-2*');
    expect(buttons(running).map((b) => b.action_id)).toEqual(['abort']);

    const paused = rootMessage(run({ state: 'paused', hostsDone: 1 }), { nextHost: 'xs-2' });
    expect(json(paused)).toContain('paused before *xs-2*');
    expect(buttons(paused).map((b) => b.action_id)).toEqual(['continue', 'abort']);

    const attention = rootMessage(
      run({ state: 'needs_attention', hostsDone: 1, result: 'xs-2: xs-2 is not back' }),
    );
    expect(buttons(attention).map((b) => b.action_id)).toEqual(['resume', 'finish']);

    const aborting = rootMessage(run({ state: 'running', abortRequestedBy: 'UAPP' }));
    expect(json(aborting)).toContain('Abort requested by <@UAPP>');
    expect(buttons(aborting)).toEqual([]);

    for (const state of [
      'done',
      'failed',
      'aborted',
      'cancelled',
      'dry_run',
      'refused',
      'finished_by_hand',
    ] as const) {
      expect(buttons(rootMessage(run({ state })))).toEqual([]);
    }
  });

  it('says an expired approval expired after how long, without buttons', () => {
    const message = rootMessage(run({ state: 'expired' }));
    expect(json(message)).toContain('Approval expired after 15 min');
    expect(buttons(message)).toEqual([]);
  });

  it('lists blockers before warnings, with XAPI codes verbatim', () => {
    const findings: Finding[] = [
      {
        severity: 'warning',
        code: 'CD_INSERTED',
        host: 'xs-1',
        vm: 'web-1',
        message: 'web-1 has tools.iso inserted',
      },
      {
        severity: 'blocker',
        code: 'VM_REQUIRES_SR',
        host: 'xs-2',
        vm: 'db-1',
        message: 'db-1 is on a local SR',
      },
    ];
    const message = rootMessage(run({ state: 'refused', findings }));
    const text = json(message);
    expect(text).toContain('1 blocker, 1 warning');
    expect(text.indexOf('VM_REQUIRES_SR')).toBeLessThan(text.indexOf('CD_INSERTED'));
  });

  it('escapes names from outside, so a VM called <!channel> pings nobody; mentions the bot wrote stay', () => {
    const hostile: PlanSummary = {
      ...plan,
      hosts: [
        {
          host: 'xs-<1>',
          master: true,
          vms: 1,
          migrations: [{ vm: '<!channel> & <@U999>', to: 'xs-2', memory: GiB }],
        },
      ],
    };
    const message = rootMessage(
      run({ state: 'cancelled', plan: hostile, result: 'Cancelled by <@UREQ>. <!here>' }),
    );
    const text = json(message);
    expect(text).not.toContain('<!channel>');
    expect(text).not.toContain('<!here>');
    expect(text).not.toContain('<@U999>');
    expect(text).toContain('&lt;!channel&gt; &amp; &lt;@U999&gt;');
    expect(text).toContain('Cancelled by <@UREQ>');
  });

  it('gives block ids that are unique, stable for the same content and new for each version', () => {
    const a = rootMessage(run());
    const b = rootMessage(run());
    const approved = rootMessage(run({ state: 'approved', approvedBy: 'UAPP' }));
    const ids = (m: SlackMessage) => (m.blocks as AnyBlock[]).map((block) => block.block_id);
    expect(ids(a)).toEqual(ids(b));
    expect(ids(approved).filter((id) => ids(a).includes(id))).toEqual([]);
  });

  it('stays within Slack limits for any plan size and any names (50 blocks, 3000 chars per text)', () => {
    const name = fc.string({ minLength: 1, maxLength: 300 });
    const host = fc.record({
      host: name,
      master: fc.boolean(),
      vms: fc.nat(200),
      migrations: fc.array(fc.record({ vm: name, to: name, memory: fc.nat() }), { maxLength: 60 }),
    });
    const finding = fc.record({
      severity: fc.constantFrom('blocker', 'warning', 'info') as fc.Arbitrary<Finding['severity']>,
      code: name,
      message: fc.string({ maxLength: 4000 }),
    });
    fc.assert(
      fc.property(
        fc.array(host, { maxLength: 120 }),
        fc.array(finding, { maxLength: 200 }),
        (hosts, findings) => {
          const big = run({
            plan: { ...plan, hosts, totalMigrations: 0 },
            findings,
            cluster: 'C'.repeat(64),
          });
          expectWithinLimits(rootMessage(big));
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('thread messages and replies', () => {
  it('a host message lists its steps with times, migration progress and failures verbatim', () => {
    const view: HostView = {
      host: 'xs-2',
      index: 2,
      total: 3,
      vms: 3,
      startedAt: '2026-11-24T10:00:00.000Z',
      status: 'in_progress',
      steps: [
        { kind: 'disabled', at: '2026-11-24T10:00:01.000Z' },
        {
          kind: 'migrations',
          at: '2026-11-24T10:00:02.000Z',
          started: 3,
          done: 1,
          planned: 3,
          failures: [
            {
              vm: 'db-1',
              to: 'xs-1',
              error: ['HOST_NOT_ENOUGH_FREE_MEMORY', '4294967296', '1073741824'],
              willRetry: true,
            },
          ],
        },
      ],
    };
    const message = hostMessage(view);
    expect(message.text).toBe('Host 2/3 xs-2: in progress');
    const text = json(message);
    expect(text).toContain('disabled');
    expect(text).toContain('migrations 1/3 (1 in flight)');
    expect(text).toContain('HOST_NOT_ENOUGH_FREE_MEMORY 4294967296 1073741824');
    expect(text).toContain('(retrying)');
    expect(text).toContain('<!date^1795514401^{time_secs}|2026-11-24 10:00:01 UTC>');
  });

  it('the summary names each host and what needs a human', () => {
    const message = summaryMessage({
      type: 'finished',
      at: '2026-11-24T11:00:00.000Z',
      seconds: 3600,
      migrations: 12,
      hosts: [{ host: 'xs-1', seconds: 1200 }],
      attention: ['db-1 could not go home to xs-2'],
    });
    expect(json(message)).toContain('*Done* in 60 min');
    expect(json(message)).toContain('db-1 could not go home');
  });

  it('status lists active then recent runs with thread links; busy and usage are ephemeral', () => {
    const listing = statusListing([
      {
        run: run({ state: 'running', hostsDone: 1 }),
        permalink: 'https://lab.slack.com/archives/COPS/p1000001',
      },
      { run: run({ runId: 'run-0', state: 'done', hostsDone: 3 }) },
    ]);
    expect(listing.response_type).toBe('ephemeral');
    const text = json(listing);
    expect(text).toContain('<https://lab.slack.com/archives/COPS/p1000001|thread>');
    expect(text.indexOf('running')).toBeLessThan(text.indexOf('done'));
    expect(json(busyMessage(run({ state: 'running' }), 'https://x/p1'))).toContain('<https://x/p1|this run>');
    expect(usageMessage('bad').text).toBe('Invalid command: bad');
  });
});
