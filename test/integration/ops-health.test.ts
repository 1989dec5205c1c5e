/**
 * `/healthz` and `/readyz` as a load balancer or Kubernetes sees them, over real sockets:
 * the bot in HTTP mode serves them on Bolt's port next to /slack/events; a ROLE=worker process on
 * a small server of its own on PORT. Readiness follows Redis going down and coming back, and
 * Slack's Web API failing and recovering; liveness stays up throughout.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { type RunningService, startService } from '../../src/service.js';
import { FAST_ENGINE_ENV, startTestLab } from '../support/lab-cli.js';
import { freePort, parseMetrics } from '../support/ops-service.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';
import { type SlackApiServer, startSlackApiServer } from '../support/slack-api-server.js';
import { SlackRequester } from '../support/slack-requests.js';

const SECRET = 'health-signing-secret';
const TOKEN = 'xoxb-health-bot-token';
const METRICS_TOKEN = 'metrics-token-0123456789';
const CHANNEL = 'COPS';

let lab: Lab;
let redisServer: TestRedis;
let slack: SlackApiServer;
let bot: RunningService;
let worker: RunningService;

interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail: string }>;
}

beforeAll(async () => {
  // This file stops its Redis, so it always starts its own, never an external REDIS_URL.
  const external = process.env.REDIS_URL;
  delete process.env.REDIS_URL;
  try {
    redisServer = await startTestRedis();
  } finally {
    if (external !== undefined) process.env.REDIS_URL = external;
  }
  [lab, slack] = await Promise.all([
    startTestLab({ hosts: 2, vms: 2 }),
    startSlackApiServer({ token: TOKEN }),
  ]);
  const env = {
    ...lab.env(),
    ...FAST_ENGINE_ENV,
    STATE_DIR: mkdtempSync(join(tmpdir(), 'crb-health-')),
    REDIS_URL: redisServer.url,
    QUEUE_PREFIX: redisServer.prefix,
    SLACK_BOT_TOKEN: TOKEN,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    ALLOWED_CHANNEL_IDS: CHANNEL,
    REQUESTER_USER_IDS: 'UREQ',
    APPROVER_USER_IDS: 'UAPP',
    SLACK_RETRY_SECONDS: '30',
  };
  [bot, worker] = await Promise.all([
    startService({ ...env, ROLE: 'bot', PORT: String(await freePort()) }),
    startService({ ...env, ROLE: 'worker', PORT: String(await freePort()), METRICS_TOKEN }),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([bot?.stop(), worker?.stop()]);
  await Promise.all([lab?.stop(), redisServer?.stop(), slack?.close()]);
});

describe('the bot in HTTP mode', () => {
  it('serves /healthz, /readyz and /metrics on the port Slack posts to', async () => {
    const health = await get(bot, '/healthz');
    expect(health.status).toBe(200);
    expect(health.text).toBe('ok\n');

    const ready = await readiness(bot);
    expect(ready.status).toBe(200);
    expect(ready.body.ready).toBe(true);
    expect(Object.keys(ready.body.checks).sort()).toEqual(['redis', 'slack']);
    expect(ready.body.checks.slack?.detail).toContain('HTTP receiver listening');

    const metrics = await get(bot, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.contentType).toContain('text/plain');
    expect(parseMetrics(metrics.text).value('crb_redis_up')).toBe(1);

    expect((await get(bot, '/nothing-here')).status).toBe(404);
  });

  it('is not ready while Slack Web API calls fail, and ready again once one goes through', async () => {
    // Slack answers the plan's post with 503 three times; the writer retries and gets through.
    slack.fail('chat.postMessage', { status: 503 }, 3);
    const requester = new SlackRequester(`http://127.0.0.1:${bot.port}/slack/events`, SECRET);
    const answer = await requester.command({
      text: `${lab.info.cluster.name}`,
      userId: 'UREQ',
      channelId: CHANNEL,
      responseUrl: slack.responseUrl('dry-run'),
    });
    expect(answer.status).toBe(200);

    await slack.waitFor((s) => s.calls('chat.postMessage').some((c) => c.answer === 'HTTP 503'), 20_000);
    const failing = await readinessUntil(bot, (r) => r.checks.slack?.ok === false);
    expect(failing.ready).toBe(false);
    expect(failing.checks.slack?.detail).toContain('HTTP 503');
    expect(failing.checks.redis?.ok).toBe(true);

    await slack.waitFor((s) => s.calls('chat.postMessage').some((c) => c.answer === 'ok'), 20_000);
    const recovered = await readinessUntil(bot, (r) => r.ready);
    expect(recovered.checks.slack?.ok).toBe(true);
    const metrics = parseMetrics((await get(bot, '/metrics')).text);
    expect(metrics.value('crb_slack_api_errors_total', { error: 'HTTP 503' })).toBe(3);
    expect(metrics.value('crb_slack_api_retries_total')).toBe(3);
  });
});

describe('a ROLE=worker process', () => {
  it('serves them on a small server of its own; /metrics wants the bearer token', async () => {
    expect((await get(worker, '/healthz')).status).toBe(200);
    const ready = await readiness(worker);
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toMatchObject({
      redis: { ok: true },
      worker: { ok: true, detail: 'running' },
      slack: { ok: true },
    });

    const anonymous = await get(worker, '/metrics');
    expect(anonymous.status).toBe(401);
    expect(anonymous.text).not.toContain('crb_');
    expect((await get(worker, '/metrics', 'Bearer not-the-token')).status).toBe(401);
    const scraped = await get(worker, '/metrics', `Bearer ${METRICS_TOKEN}`);
    expect(scraped.status).toBe(200);
    expect(parseMetrics(scraped.text).value('crb_redis_up')).toBe(1);

    const post = await fetch(`http://127.0.0.1:${worker.port}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('is not ready while Redis is down, alive throughout, and ready again when Redis is back', async () => {
    await redisServer.stop();
    const down = await readinessUntil(worker, (r) => !r.ready);
    expect(down.checks.redis?.ok).toBe(false);
    expect(down.checks.worker?.ok).toBe(true);
    expect((await get(worker, '/healthz')).status).toBe(200);
    const botDown = await readinessUntil(bot, (r) => !r.ready);
    expect(botDown.checks.redis?.ok).toBe(false);

    // A scrape still answers at once, saying Redis is down.
    const started = Date.now();
    const scraped = await get(worker, '/metrics', `Bearer ${METRICS_TOKEN}`);
    expect(scraped.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(8_000);
    const metrics = parseMetrics(scraped.text);
    expect(metrics.value('crb_redis_up')).toBe(0);
    expect(metrics.has('crb_queue_jobs')).toBe(false);

    await redisServer.restart();
    const up = await readinessUntil(worker, (r) => r.ready, 20_000);
    expect(up.checks.redis).toEqual({ ok: true, detail: 'PONG' });
    expect((await readinessUntil(bot, (r) => r.ready, 20_000)).checks.redis?.ok).toBe(true);
  });
});

async function get(
  service: RunningService,
  path: string,
  authorization?: string,
): Promise<{ status: number; text: string; contentType: string }> {
  const response = await fetch(`http://127.0.0.1:${service.port}${path}`, {
    headers: authorization ? { authorization } : {},
    signal: AbortSignal.timeout(10_000),
  });
  return {
    status: response.status,
    text: await response.text(),
    contentType: response.headers.get('content-type') ?? '',
  };
}

async function readiness(service: RunningService): Promise<{ status: number; body: Readiness }> {
  const answer = await get(service, '/readyz');
  return { status: answer.status, body: JSON.parse(answer.text) as Readiness };
}

/** Asks /readyz until `predicate` holds; the status code must agree with the body every time. */
async function readinessUntil(
  service: RunningService,
  predicate: (r: Readiness) => boolean,
  timeoutMs = 15_000,
): Promise<Readiness> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await readiness(service);
    expect(status).toBe(body.ready ? 200 : 503);
    if (predicate(body)) return body;
    if (Date.now() > deadline) throw new Error(`readiness condition not met: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
