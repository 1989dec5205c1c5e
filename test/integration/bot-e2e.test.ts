/**
 * The whole product as a team uses it, through `npm start`'s own wiring (startService, ROLE=all):
 * a signed `/reboot-cluster CLUSTER-1 --exec` into Bolt's HTTP receiver, the plan posted with
 * buttons, self-approval refused, approval by a second engineer, the BullMQ worker rebooting the
 * lab cluster, one thread message per host and a summary. Judged by what the Slack test server
 * received, what Redis holds, and the lab's own operation log.
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { RedisAuditLog } from '../../src/audit/audit-log.js';
import type { RunRecord } from '../../src/queue/contracts.js';
import { createRedis, type Redis } from '../../src/queue/redis.js';
import { RedisRunStore } from '../../src/queue/run-store.js';
import { type RunningService, startService } from '../../src/service.js';
import { freePort } from '../support/free-port.js';
import { FAST_ENGINE_ENV, startTestLab } from '../support/lab-cli.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';
import { type SlackApiServer, type StoredMessage, startSlackApiServer } from '../support/slack-api-server.js';
import { SlackRequester } from '../support/slack-requests.js';

const SECRET = 'e2e-signing-secret-value';
const TOKEN = 'xoxb-e2e-bot-token-value';
const OPS = 'COPS';
const REQUESTER = 'UREQ';
const APPROVER = 'UAPP';

let lab: Lab;
let redisServer: TestRedis;
let redis: Redis;
let slack: SlackApiServer;
let service: RunningService;
let requester: SlackRequester;
let runs: RedisRunStore;

beforeAll(async () => {
  [lab, redisServer, slack] = await Promise.all([
    startTestLab({ hosts: 3, vms: 6 }),
    startTestRedis(),
    startSlackApiServer({ token: TOKEN }),
  ]);
  const port = await freePort();
  service = await startService({
    ...lab.env(),
    ...FAST_ENGINE_ENV,
    STATE_DIR: mkdtempSync(join(tmpdir(), 'crb-e2e-')),
    ROLE: 'all',
    PORT: String(port),
    REDIS_URL: redisServer.url,
    QUEUE_PREFIX: redisServer.prefix,
    SLACK_BOT_TOKEN: TOKEN,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    ALLOWED_CHANNEL_IDS: OPS,
    REQUESTER_USER_IDS: REQUESTER,
    APPROVER_USER_IDS: APPROVER,
    LOCK_TTL_SECONDS: '5',
    STALLED_INTERVAL_SECONDS: '5',
  });
  requester = new SlackRequester(`http://127.0.0.1:${port}/slack/events`, SECRET);
  redis = createRedis(redisServer.url, 'client');
  runs = new RedisRunStore(redis, redisServer.prefix);
});

afterAll(async () => {
  await service?.stop();
  redis?.disconnect();
  await Promise.all([lab?.stop(), redisServer?.stop(), slack?.close()]);
});

describe('the Slack flow end to end', () => {
  it('request, plan, self-approval refused, approval, worker run, per-host thread, summary', async () => {
    const command = await requester.command({
      text: 'CLUSTER-1 --exec',
      userId: REQUESTER,
      channelId: OPS,
      responseUrl: slack.responseUrl('command'),
    });
    expect(command.status).toBe(200);

    await slack.waitFor(
      (s) => s.messages({ channel: OPS }).some((m) => !m.threadTs && buttonValue(m, 'approve')),
      20_000,
    );
    const [planMessage] = slack.messages({ channel: OPS }).filter((m) => !m.threadTs);
    const runId = buttonValue(planMessage as StoredMessage, 'approve') as string;
    expect((await runs.get(runId))?.state).toBe('awaiting_approval');
    expect(JSON.stringify(planMessage?.blocks)).toContain('host1');

    const click = (userId: string) =>
      requester.click({
        actionId: 'approve',
        value: runId,
        userId,
        channelId: OPS,
        messageTs: planMessage?.ts as string,
        responseUrl: slack.responseUrl(`click-${userId}`),
      });
    expect((await click(REQUESTER)).status).toBe(200);
    await slack.waitFor((s) => s.responses(`click-${REQUESTER}`).length > 0, 10_000);
    expect((await runs.get(runId))?.state).toBe('awaiting_approval');
    expect(lab.log.ofKind('host.disabled')).toEqual([]);

    expect((await click(APPROVER)).status).toBe(200);
    const finished = await waitForRun(runId, ['done', 'failed', 'aborted', 'needs_attention'], 90_000);
    expect(finished.state).toBe('done');
    expect(finished).toMatchObject({ approvedBy: APPROVER, hostsDone: 3, hostsTotal: 3 });

    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });

    await service.stop();
    const thread = slack.messages({ channel: OPS, threadTs: planMessage?.ts });
    for (const host of ['host1', 'host2', 'host3']) {
      expect(thread.filter((m) => m.text.includes(host)).length).toBeGreaterThan(0);
    }
    const root = slack.message(planMessage?.ts as string);
    expect(root?.updates).toBeGreaterThan(0);
    expect(buttonValue(root as StoredMessage, 'approve')).toBeUndefined();
    expect(JSON.stringify(root?.blocks)).toMatch(/3 of 3|3\/3/);

    const audit = new RedisAuditLog(redis, redisServer.prefix);
    const actions = (await audit.list({ runId })).map((entry) => `${entry.actor} ${entry.action}`);
    expect(actions).toEqual(expect.arrayContaining([`${REQUESTER} request`, `${APPROVER} approve`]));
    expect(actions.some((a) => a.startsWith(`${REQUESTER} `) && a.includes('refus'))).toBe(true);
    expect(actions.filter((a) => a.includes('host_done'))).toHaveLength(3);

    // No secret reaches Slack: tokens, signing secret, lab credentials.
    const sentToSlack = JSON.stringify(slack.calls().map((c) => c.body));
    for (const secret of [
      SECRET,
      TOKEN,
      lab.info.xapi.password,
      lab.info.cloudstack.secretKey,
      lab.info.cloudstack.apiKey,
    ]) {
      expect(sentToSlack).not.toContain(secret);
    }
  });
});

function buttonValue(message: StoredMessage, actionId: string): string | undefined {
  for (const block of message.blocks as Array<{
    type: string;
    elements?: Array<{ action_id?: string; value?: string }>;
  }>) {
    if (block.type !== 'actions') continue;
    const button = block.elements?.find((element) => element.action_id === actionId);
    if (button) return button.value;
  }
  return undefined;
}

async function waitForRun(
  runId: string,
  states: RunRecord['state'][],
  timeoutMs: number,
): Promise<RunRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await runs.get(runId);
    if (run && states.includes(run.state)) return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} still ${run?.state} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
