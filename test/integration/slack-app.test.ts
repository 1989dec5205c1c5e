/**
 * The Slack app end to end over real sockets: signed slash commands and button clicks sent to
 * Bolt's HTTP receiver, Slack's Web API and response_urls served by a local server, runs and
 * audit entries in a private Redis, the plan from a real lab's pre-flight. Each test judges what
 * Slack was sent and what Redis holds, not what the code says about itself.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { RedisAuditLog } from '../../src/audit/audit-log.js';
import { loadBotConfig } from '../../src/bot-config.js';
import { loadConfig } from '../../src/config.js';
import { runPreflight } from '../../src/engine/preflight.js';
import { silentLogger } from '../../src/log.js';
import type { RunQueue, RunRecord } from '../../src/queue/contracts.js';
import { createRedis, type Redis } from '../../src/queue/redis.js';
import { RedisRunStore } from '../../src/queue/run-store.js';
import { createEngineDeps } from '../../src/runtime.js';
import { createSlackApp, type PlanFunction, type SlackBot } from '../../src/slack/app.js';
import { FAST_ENGINE_ENV, startTestLab } from '../support/lab-cli.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';
import { type SlackApiServer, type StoredMessage, startSlackApiServer } from '../support/slack-api-server.js';
import { SlackRequester } from '../support/slack-requests.js';

const TOKEN = 'xoxb-test-app';
const SECRET = 'signing-secret-for-tests';
const OPS = 'COPS';
const REQUESTER = 'UREQ';
const APPROVER = 'UAPP';
const SECOND_APPROVER = 'UAPP2';
const GROUP_MEMBER = 'UGRP';
const STRANGER = 'UNOBODY';

let redisServer: TestRedis;
let redis: Redis;
let lab: Lab;
let labPlan: PlanFunction;
let testNumber = 0;

beforeAll(async () => {
  [redisServer, lab] = await Promise.all([startTestRedis(), startTestLab({ hosts: 3, vms: 6 })]);
  redis = createRedis(redisServer.url, 'client');
  const stateDir = mkdtempSync(join(tmpdir(), 'crb-slack-'));
  labPlan = async (request) => {
    const config = loadConfig({ ...lab.env(), ...FAST_ENGINE_ENV, STATE_DIR: stateDir });
    const deps = createEngineDeps(config, { emit: () => {} });
    const result = await runPreflight(deps, {
      cluster: request.cluster,
      exec: request.exec,
      threads: request.options.threads,
      ignoreHosts: request.options.ignoreHosts,
      restorePlacement: request.options.restorePlacement,
    });
    await result.connection?.close();
    return { ok: result.ok, findings: result.findings, ...(result.summary ? { plan: result.summary } : {}) };
  };
});

afterAll(async () => {
  redis?.disconnect();
  await Promise.all([redisServer?.stop(), lab?.stop()]);
});

interface Harness {
  bot: SlackBot;
  api: SlackApiServer;
  slack: SlackRequester;
  runs: RedisRunStore;
  audit: RedisAuditLog;
  enqueued: string[];
  clearedCheckpoints: string[];
  /** Moves the bot's clock (approval expiry) forward. */
  advanceClock(ms: number): void;
  command(user: string, text: string, channel?: string): Promise<Sent>;
  click(
    user: string,
    actionId: string,
    run: RunRecord,
    overrides?: { messageTs?: string; channel?: string },
  ): Promise<Sent>;
  /** Waits for the run request's last answer (plan posted, or refused). */
  requested(user: string, text: string): Promise<RunRecord>;
}

interface Sent {
  status: number;
  json?: Record<string, unknown>;
  ms: number;
  responseId: string;
  /** The ephemeral answers sent to this request's response_url so far. */
  responses(): Array<Record<string, unknown>>;
}

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.bot.stop(1_000);
  await harness?.api.close();
  harness = undefined;
});

async function start(
  options: { plan?: PlanFunction; extraEnv?: Record<string, string>; checkpointInUse?: () => boolean } = {},
): Promise<Harness> {
  testNumber += 1;
  const prefix = `${redisServer.prefix}-${testNumber}`;
  const api = await startSlackApiServer({ token: TOKEN });
  api.setUsergroup('S0REQUESTERS', [GROUP_MEMBER]);
  const config = loadBotConfig({
    SLACK_BOT_TOKEN: TOKEN,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: api.apiUrl,
    REQUESTER_USER_IDS: REQUESTER,
    REQUESTER_USERGROUP_IDS: 'S0REQUESTERS',
    APPROVER_USER_IDS: `${APPROVER},${SECOND_APPROVER}`,
    ALLOWED_CHANNEL_IDS: OPS,
    APPROVAL_TTL_SECONDS: '900',
    SLACK_RETRY_SECONDS: '5',
    ...options.extraEnv,
  });
  const runs = new RedisRunStore(redis, prefix);
  const audit = new RedisAuditLog(redis, prefix);
  const enqueued: string[] = [];
  const clearedCheckpoints: string[] = [];
  const queue: RunQueue = {
    enqueue: async (runId) => {
      enqueued.push(runId);
    },
    close: async () => {},
  };
  let clockOffset = 0;
  const bot = createSlackApp({
    config,
    runStore: runs,
    audit,
    queue,
    plan: options.plan ?? labPlan,
    clearCheckpoint: async (cluster) => {
      if (options.checkpointInUse?.()) throw new Error(`a worker still holds ${cluster}`);
      clearedCheckpoints.push(cluster);
    },
    logger: silentLogger,
    listen: { port: 0, host: '127.0.0.1' },
    now: () => Date.now() + clockOffset,
    minSlackIntervalMs: 10,
    sweepIntervalMs: 60_000,
  });
  const { port } = await bot.start();
  const slack = new SlackRequester(`http://127.0.0.1:${port}/slack/events`, SECRET);
  let requestNumber = 0;
  const sent = async (
    responseId: string,
    answer: Promise<{ status: number; json?: Record<string, unknown>; ms: number }>,
  ) => {
    const { status, json, ms } = await answer;
    return {
      status,
      ...(json ? { json } : {}),
      ms,
      responseId,
      responses: () => api.responses(responseId).map((r) => r.body),
    };
  };
  const h: Harness = {
    bot,
    api,
    slack,
    runs,
    audit,
    enqueued,
    clearedCheckpoints,
    advanceClock: (ms) => {
      clockOffset += ms;
    },
    command: (user, text, channel = OPS) => {
      requestNumber += 1;
      const responseId = `cmd${requestNumber}`;
      return sent(
        responseId,
        slack.command({ text, userId: user, channelId: channel, responseUrl: api.responseUrl(responseId) }),
      );
    },
    click: (user, actionId, run, overrides = {}) => {
      requestNumber += 1;
      const responseId = `click${requestNumber}`;
      return sent(
        responseId,
        slack.click({
          actionId,
          value: run.runId,
          userId: user,
          channelId: overrides.channel ?? run.channel,
          messageTs: overrides.messageTs ?? (run.messageTs as string),
          responseUrl: api.responseUrl(responseId),
        }),
      );
    },
    requested: async (user, text) => {
      const answer = await h.command(user, text);
      expect(answer.status).toBe(200);
      await api.waitFor(() =>
        answer.responses().some((r) => r.replace_original === true && !/^Checking/.test(String(r.text))),
      );
      const [run] = await runs.listRecent({ limit: 1 });
      if (!run) throw new Error('no run was stored');
      return run;
    },
  };
  harness = h;
  return h;
}

/** A fixed plan for tests where the lab adds nothing. */
const fixedPlan: PlanFunction = async (request) => ({
  ok: true,
  findings: [],
  plan: {
    cluster: request.cluster,
    hosts: [
      { host: 'xs-1', master: true, vms: 2, migrations: [{ vm: 'web-1', to: 'xs-2', memory: 2 ** 31 }] },
      { host: 'xs-2', master: false, vms: 1, migrations: [{ vm: 'db-1', to: 'xs-1', memory: 2 ** 32 }] },
    ],
    totalMigrations: 2,
    optimalMigrations: 2,
    memoryMoved: 3 * 2 ** 31,
    estimatedSeconds: 700,
  },
});

function blocksText(message: { blocks: unknown[] } | undefined): string {
  return JSON.stringify(message?.blocks ?? []);
}

function actionIds(message: StoredMessage | undefined): string[] {
  return (message?.blocks ?? [])
    .filter(
      (b): b is { type: 'actions'; elements: Array<{ action_id: string }> } =>
        (b as { type: string }).type === 'actions',
    )
    .flatMap((b) => b.elements.map((e) => e.action_id));
}

async function auditActions(h: Harness, runId?: string): Promise<string[]> {
  return (await h.audit.list(runId ? { runId } : {})).map((e) => e.action);
}

describe('the slash command', () => {
  it('acks a signed command at once, before the slow pre-flight, with an ephemeral answer', async () => {
    let release!: () => void;
    const planStarted = new Promise<void>((resolve) => {
      release = resolve;
    });
    let planned = false;
    const h = await start({
      plan: async (request) => {
        await planStarted;
        planned = true;
        return fixedPlan(request);
      },
    });
    const answer = await h.command(REQUESTER, 'CLUSTER-1');
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ response_type: 'ephemeral', text: 'Checking CLUSTER-1…' });
    expect(answer.ms).toBeLessThan(2_000);
    // The answer came while the pre-flight was still blocked.
    expect(planned).toBe(false);
    release();
    await h.api.waitFor(() => h.api.calls('chat.postMessage').length === 1);
  });

  it('refuses forged and stale signatures with 401: nothing posted, nothing stored', async () => {
    const h = await start({ plan: fixedPlan });
    const fields = {
      text: 'CLUSTER-1 --exec',
      userId: REQUESTER,
      channelId: OPS,
      responseUrl: h.api.responseUrl('x'),
    };
    const forged = await h.slack.command(fields, { signWith: 'not-the-secret' });
    const stale = await h.slack.command(fields, { timestamp: Math.floor(Date.now() / 1000) - 10 * 60 });
    const forgedClick = await h.slack.click(
      {
        actionId: 'approve',
        value: 'x',
        userId: APPROVER,
        channelId: OPS,
        messageTs: '1.2',
        responseUrl: h.api.responseUrl('y'),
      },
      { signWith: 'not-the-secret' },
    );
    expect([forged.status, stale.status, forgedClick.status]).toEqual([401, 401, 401]);
    expect(h.api.calls()).toEqual([]);
    expect(h.api.responses()).toEqual([]);
    expect(await h.runs.listRecent({ limit: 10 })).toEqual([]);
    expect(await h.audit.list()).toEqual([]);
  });

  it.each([
    ['CLUSTER-1 --exce', "Unknown option '--exce'"],
    ['CLUSTER-1 --threads 99', '--threads must be a whole number from 1 to 20'],
    ['CLUSTER-1 --pre-empty-hook drain;reboot', 'is not a hook name'],
    ['bad;name', 'is not a cluster name'],
    ['', 'Name the cluster to reboot'],
  ])('answers %j with the usage in the ack, and changes nothing', async (text, error) => {
    const h = await start({ plan: fixedPlan });
    const answer = await h.command(REQUESTER, text);
    expect(answer.status).toBe(200);
    expect(answer.json?.response_type).toBe('ephemeral');
    expect(String(answer.json?.text)).toContain(error);
    expect(blocksText(answer.json as { blocks: unknown[] })).toContain('/reboot-cluster status');
    expect(h.api.calls()).toEqual([]);
    expect(await h.runs.listRecent({ limit: 10 })).toEqual([]);
  });

  it('answers help with the usage', async () => {
    const h = await start({ plan: fixedPlan });
    const answer = await h.command(STRANGER, 'help');
    expect(answer.json?.response_type).toBe('ephemeral');
    expect(blocksText(answer.json as { blocks: unknown[] })).toContain('--restore-placement');
  });

  it('refuses an unauthorized user and an unauthorized channel, ephemerally, and audits both', async () => {
    const h = await start({ plan: fixedPlan });
    const stranger = await h.command(STRANGER, 'CLUSTER-1 --exec');
    await h.api.waitFor(() => stranger.responses().length >= 1);
    expect(stranger.responses()[0]).toMatchObject({ response_type: 'ephemeral' });
    expect(String(stranger.responses()[0]?.text)).toContain('not on the list of people who may request');

    const elsewhere = await h.command(REQUESTER, 'CLUSTER-1 --exec', 'CELSEWHERE');
    expect(elsewhere.json?.response_type).toBe('ephemeral');
    expect(blocksText(elsewhere.json as { blocks: unknown[] })).toContain(`<#${OPS}>`);

    await expect.poll(() => auditActions(h)).toEqual(['refusal', 'refusal']);
    const entries = await h.audit.list();
    expect(entries.map((e) => e.actor)).toEqual([STRANGER, REQUESTER]);
    expect(h.api.calls('chat.postMessage')).toEqual([]);
    expect(await h.runs.listRecent({ limit: 10 })).toEqual([]);
  });

  it('posts a dry run: the lab plan with its hosts, no buttons, nothing changed', async () => {
    const h = await start();
    const run = await h.requested(REQUESTER, 'CLUSTER-1');
    expect(run.state).toBe('dry_run');
    expect(run.hostsTotal).toBe(3);
    const posted = h.api.message(run.messageTs as string);
    expect(posted?.channel).toBe(OPS);
    for (const host of lab.info.hosts) expect(blocksText(posted)).toContain(host.name);
    expect(blocksText(posted)).toContain('Nothing was changed');
    expect(actionIds(posted)).toEqual([]);
    expect(await auditActions(h, run.runId)).toEqual(['request', 'plan_posted']);
    expect(lab.log.entries().filter((op) => op.kind === 'host.disabled')).toEqual([]);
  });

  it('lets a member of a requester user group request (usergroups.users.list)', async () => {
    const h = await start({ plan: fixedPlan });
    const run = await h.requested(GROUP_MEMBER, 'CLUSTER-1');
    expect(run.requestedBy).toBe(GROUP_MEMBER);
    expect(h.api.calls('usergroups.users.list').map((c) => c.body.usergroup)).toEqual(['S0REQUESTERS']);
  });

  it('refuses a second request for a busy cluster with a link to the run in progress', async () => {
    const h = await start({ plan: fixedPlan });
    const first = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    const second = await h.command(GROUP_MEMBER, 'CLUSTER-1');
    await h.api.waitFor(() => second.responses().some((r) => String(r.text).includes('already has a run')));
    const refusal = second.responses().at(-1);
    expect(blocksText(refusal as { blocks: unknown[] })).toContain(`https://lab.slack.com/archives/${OPS}/p`);
    expect(h.api.calls('chat.postMessage')).toHaveLength(1);
    expect((await h.runs.listRecent({ limit: 10 })).map((r) => r.runId)).toEqual([first.runId]);
    expect(await auditActions(h)).toContain('refusal');
  });

  it('lists current and recent runs with links to their threads', async () => {
    const h = await start({ plan: fixedPlan });
    const dry = await h.requested(REQUESTER, 'CLUSTER-2');
    const exec = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    const status = await h.command(STRANGER, 'status');
    await h.api.waitFor(() => status.responses().length >= 1);
    const listing = blocksText(status.responses()[0] as { blocks: unknown[] });
    for (const run of [dry, exec]) {
      expect(listing).toContain(`p${(run.messageTs as string).replace('.', '')}`);
    }
    expect(listing).toContain('awaiting approval');
    const one = await h.command(STRANGER, 'status CLUSTER-2');
    await h.api.waitFor(() => one.responses().length >= 1);
    expect(blocksText(one.responses()[0] as { blocks: unknown[] })).not.toContain('CLUSTER-1');
  });
});

describe('the buttons', () => {
  it('posts an --exec plan with Approve (primary, confirm) and Cancel carrying the run id', async () => {
    const h = await start({ plan: fixedPlan });
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec --threads 3');
    expect(run.state).toBe('awaiting_approval');
    const ttl = Date.parse(run.approvalExpiresAt as string) - Date.parse(run.createdAt);
    expect(ttl).toBeGreaterThanOrEqual(900_000);
    expect(ttl).toBeLessThan(905_000);
    const message = h.api.message(run.messageTs as string);
    expect(actionIds(message)).toEqual(['approve', 'cancel']);
    const approve = (
      (message?.blocks ?? []) as Array<{ type: string; elements?: Array<Record<string, unknown>> }>
    ).find((b) => b.type === 'actions')?.elements?.[0];
    expect(approve).toMatchObject({ style: 'primary', value: run.runId });
    expect(approve?.confirm).toBeDefined();
  });

  it('refuses self-approval, then accepts a second approver: message updated, run approved, one enqueue', async () => {
    const h = await start({ plan: fixedPlan });
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');

    const self = await h.click(REQUESTER, 'approve', run);
    expect(self.status).toBe(200);
    await h.api.waitFor(() => self.responses().length >= 1);
    expect(String(self.responses()[0]?.text)).toContain('a second engineer must approve');
    expect(self.responses()[0]).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    expect((await h.runs.get(run.runId))?.state).toBe('awaiting_approval');
    expect(h.enqueued).toEqual([]);

    const approval = await h.click(APPROVER, 'approve', run);
    expect(approval.status).toBe(200);
    await h.api.waitFor(
      () => h.api.calls('chat.update').length >= 1 && h.api.messages({ threadTs: run.messageTs }).length >= 1,
    );
    const stored = await h.runs.get(run.runId);
    expect(stored).toMatchObject({ state: 'approved', approvedBy: APPROVER });
    expect(h.enqueued).toEqual([run.runId]);
    const root = h.api.message(run.messageTs as string);
    expect(blocksText(root)).toContain(`Approved by <@${APPROVER}>`);
    expect(actionIds(root)).toEqual(['abort']);
    expect(blocksText(h.api.messages({ threadTs: run.messageTs })[0])).toContain(
      `<@${APPROVER}> approved the run`,
    );
    expect(await auditActions(h, run.runId)).toEqual([
      'request',
      'plan_posted',
      'approve_refused',
      'approve',
    ]);
  });

  it('refuses an approver who is not on the approver list', async () => {
    const h = await start({ plan: fixedPlan });
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    const click = await h.click(GROUP_MEMBER, 'approve', run);
    await h.api.waitFor(() => click.responses().length >= 1);
    expect(String(click.responses()[0]?.text)).toContain('not on the list of people who may approve');
    expect((await h.runs.get(run.runId))?.state).toBe('awaiting_approval');
  });

  it('turns a double click and 10 concurrent clicks into exactly one approval and one enqueue', async () => {
    const h = await start({ plan: fixedPlan });
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    const clicks = await Promise.all([
      h.click(APPROVER, 'approve', run),
      h.click(APPROVER, 'approve', run),
      ...Array.from({ length: 10 }, (_, i) =>
        h.click(i % 2 === 0 ? APPROVER : SECOND_APPROVER, 'approve', run),
      ),
    ]);
    expect(clicks.every((c) => c.status === 200)).toBe(true);
    // Every click but one is answered "already approved"; the winner updates the message.
    await h.api.waitFor(
      () =>
        clicks.filter((c) => c.responses().length > 0).length === 11 &&
        h.api.messages({ threadTs: run.messageTs }).length === 1,
    );
    expect(h.enqueued).toEqual([run.runId]);
    const audit = await auditActions(h, run.runId);
    expect(audit.filter((a) => a === 'approve')).toHaveLength(1);
    expect(audit.filter((a) => a === 'approve_refused')).toHaveLength(11);
    for (const click of clicks.filter((c) => c.responses().length > 0)) {
      expect(String(click.responses()[0]?.text)).toMatch(/Already approved by <@UAPP2?>/);
    }
    await h.bot.writer.flush(5_000);
    expect(h.api.calls('chat.update').length).toBeGreaterThanOrEqual(1);
    expect(h.api.messages({ threadTs: run.messageTs })).toHaveLength(1);
  });

  it('refuses an expired approval, marks the run expired and says so in the message', async () => {
    const h = await start({ plan: fixedPlan });
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    h.advanceClock(900_000 + 1_000);
    const click = await h.click(APPROVER, 'approve', run);
    await h.api.waitFor(() => click.responses().length >= 1);
    expect(String(click.responses()[0]?.text)).toContain('expired after 15 min');
    expect((await h.runs.get(run.runId))?.state).toBe('expired');
    expect(h.enqueued).toEqual([]);
    await h.bot.writer.flush(5_000);
    const root = h.api.message(run.messageTs as string);
    expect(blocksText(root)).toContain('Approval expired after 15 min');
    expect(actionIds(root)).toEqual([]);
  });

  it('the sweeper expires approvals nobody clicked, and updates their message', async () => {
    const h = await start({ plan: fixedPlan });
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    expect(await h.bot.sweepExpiredApprovals()).toBe(0);
    h.advanceClock(900_000 + 1_000);
    expect(await h.bot.sweepExpiredApprovals()).toBe(1);
    await h.bot.writer.flush(5_000);
    expect((await h.runs.get(run.runId))?.state).toBe('expired');
    expect(blocksText(h.api.message(run.messageTs as string))).toContain('Approval expired');
    expect(await auditActions(h, run.runId)).toContain('expired');
  });

  it('cancels on Cancel: no enqueue, message without buttons', async () => {
    const h = await start({ plan: fixedPlan });
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    await h.click(REQUESTER, 'cancel', run);
    await h.api.waitFor(() => h.api.messages({ threadTs: run.messageTs }).length >= 1);
    await h.bot.writer.flush(5_000);
    expect((await h.runs.get(run.runId))?.state).toBe('cancelled');
    expect(actionIds(h.api.message(run.messageTs as string))).toEqual([]);
    expect(h.enqueued).toEqual([]);
  });

  it('refuses clicks on unknown runs and on copies of a run message elsewhere', async () => {
    const h = await start({ plan: fixedPlan });
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    const unknown = await h.click(APPROVER, 'approve', { ...run, runId: 'no-such-run' });
    const otherMessage = await h.click(APPROVER, 'approve', run, { messageTs: '1700009999.000001' });
    const otherChannel = await h.click(APPROVER, 'approve', run, { channel: 'CELSEWHERE' });
    await h.api.waitFor(() => [unknown, otherMessage, otherChannel].every((c) => c.responses().length >= 1));
    expect(String(unknown.responses()[0]?.text)).toContain('does not belong to any run');
    expect(String(otherMessage.responses()[0]?.text)).toContain("does not belong to that run's message");
    expect(String(otherChannel.responses()[0]?.text)).toContain("does not belong to that run's message");
    expect((await h.runs.get(run.runId))?.state).toBe('awaiting_approval');
    expect(h.enqueued).toEqual([]);
  });

  it('sets the abort flag on Abort while running, and aborts a queued run before it starts', async () => {
    const h = await start({ plan: fixedPlan });
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    await h.click(APPROVER, 'approve', run);
    await h.api.waitFor(() => h.enqueued.length === 1);
    // The worker's part: the run starts.
    expect((await h.runs.transition(run.runId, ['approved'], 'running')).ok).toBe(true);

    const stranger = await h.click(STRANGER, 'abort', run);
    await h.api.waitFor(() => stranger.responses().length >= 1);
    expect(await h.runs.isAbortRequested(run.runId)).toBe(false);

    await h.click(APPROVER, 'abort', run);
    await expect.poll(() => h.runs.isAbortRequested(run.runId)).toBe(true);
    await h.api.waitFor(() =>
      h.api.messages({ threadTs: run.messageTs }).some((m) => blocksText(m).includes('requested an abort')),
    );
    await h.bot.writer.flush(5_000);
    expect(blocksText(h.api.message(run.messageTs as string))).toContain(`Abort requested by <@${APPROVER}>`);
    expect(actionIds(h.api.message(run.messageTs as string))).toEqual([]);
    expect((await h.runs.get(run.runId))?.state).toBe('running');

    const queued = await h.requested(GROUP_MEMBER, 'CLUSTER-9 --exec');
    await h.click(APPROVER, 'approve', queued);
    await h.api.waitFor(() => h.enqueued.length === 2);
    await h.click(GROUP_MEMBER, 'abort', queued);
    await expect.poll(async () => (await h.runs.get(queued.runId))?.state).toBe('aborted');
    expect(await h.runs.isAbortRequested(queued.runId)).toBe(true);
  });

  it('Resume re-queues a run that needs attention; Finish closes it and clears the checkpoint', async () => {
    let checkpointInUse = false;
    const h = await start({ plan: fixedPlan, checkpointInUse: () => checkpointInUse });
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    await h.click(APPROVER, 'approve', run);
    await h.api.waitFor(() => h.enqueued.length === 1);
    await h.runs.transition(run.runId, ['approved'], 'running');
    await h.runs.transition(run.runId, ['running'], 'needs_attention', { result: 'xs-2 did not come back' });

    await h.click(REQUESTER, 'resume', run);
    await h.api.waitFor(() => h.enqueued.length === 2);
    expect((await h.runs.get(run.runId))?.state).toBe('approved');

    await h.runs.transition(run.runId, ['approved'], 'needs_attention');
    checkpointInUse = true;
    const refused = await h.click(APPROVER, 'finish', run);
    await h.api.waitFor(() => refused.responses().length >= 1);
    expect(String(refused.responses()[0]?.text)).toContain('checkpoint could not be deleted');
    expect((await h.runs.get(run.runId))?.state).toBe('needs_attention');

    checkpointInUse = false;
    const finish = await h.click(APPROVER, 'finish', run);
    await expect.poll(async () => (await h.runs.get(run.runId))?.state).toBe('finished_by_hand');
    expect(h.clearedCheckpoints).toEqual(['CLUSTER-1']);
    const again = await h.click(APPROVER, 'finish', run);
    await h.api.waitFor(() => again.responses().length >= 1);
    expect(String(again.responses()[0]?.text)).toContain('finished by hand: nothing to finish');
    expect(finish.responses()).toEqual([]);
    expect(await auditActions(h, run.runId)).toEqual([
      'request',
      'plan_posted',
      'approve',
      'resume',
      'click_refused',
      'finish',
      'click_refused',
    ]);
  });
});
