/**
 * For the operations tests: the whole service (`startService`, as `npm start` wires it) against a
 * lab, a private Redis and the local Slack API server; a signed request and a second engineer's
 * approval to start a run; scrapes of `/metrics` parsed into samples.
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab, LabOptions } from '../../lab/lab.js';
import type { Logger } from '../../src/log.js';
import type { RunRecord } from '../../src/queue/contracts.js';
import { createRedis, type Redis } from '../../src/queue/redis.js';
import { RedisRunStore } from '../../src/queue/run-store.js';
import { type RunningService, startService } from '../../src/service.js';
import { freePort } from './free-port.js';
import { FAST_ENGINE_ENV, startTestLab } from './lab-cli.js';
import { startTestRedis, type TestRedis } from './redis-server.js';
import { type SlackApiServer, type StoredMessage, startSlackApiServer } from './slack-api-server.js';
import { SlackRequester } from './slack-requests.js';

export const SIGNING_SECRET = 'ops-signing-secret-value';
export const BOT_TOKEN = 'xoxb-ops-bot-token-value';
export const OPS_CHANNEL = 'COPS';
export const REQUESTER = 'UREQ';
export const APPROVER = 'UAPP';

export interface OpsHarness {
  lab: Lab;
  redisServer: TestRedis;
  redis: Redis;
  slack: SlackApiServer;
  service: RunningService;
  runs: RedisRunStore;
  baseUrl: string;
  /** `/reboot-cluster CLUSTER-1 --exec`, then approval by a second engineer; the run's id and root message. */
  requestAndApprove(): Promise<{ runId: string; messageTs: string }>;
  waitForRun(runId: string, states: RunRecord['state'][], timeoutMs: number): Promise<RunRecord>;
  scrape(): Promise<MetricSamples>;
  stop(): Promise<void>;
}

export async function startOpsHarness(
  options: { lab?: LabOptions; env?: Record<string, string>; logger?: Logger } = {},
): Promise<OpsHarness> {
  const [lab, redisServer, slack] = await Promise.all([
    startTestLab({ hosts: 3, vms: 6, ...options.lab }),
    startTestRedis(),
    startSlackApiServer({ token: BOT_TOKEN }),
  ]);
  const port = await freePort();
  const service = await startService(
    {
      ...lab.env(),
      ...FAST_ENGINE_ENV,
      STATE_DIR: mkdtempSync(join(tmpdir(), 'crb-ops-')),
      ROLE: 'all',
      PORT: String(port),
      REDIS_URL: redisServer.url,
      QUEUE_PREFIX: redisServer.prefix,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: slack.apiUrl,
      ALLOWED_CHANNEL_IDS: OPS_CHANNEL,
      REQUESTER_USER_IDS: REQUESTER,
      APPROVER_USER_IDS: APPROVER,
      LOCK_TTL_SECONDS: '5',
      STALLED_INTERVAL_SECONDS: '5',
      ...options.env,
    },
    options.logger ? { logger: options.logger } : {},
  );
  const baseUrl = `http://127.0.0.1:${service.port}`;
  const requester = new SlackRequester(`${baseUrl}/slack/events`, SIGNING_SECRET);
  const redis = createRedis(redisServer.url, 'client');
  const runs = new RedisRunStore(redis, redisServer.prefix);

  const waitForRun: OpsHarness['waitForRun'] = async (runId, states, timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = await runs.get(runId);
      if (run && states.includes(run.state)) return run;
      if (Date.now() > deadline) throw new Error(`run ${runId} still ${run?.state} after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  return {
    lab,
    redisServer,
    redis,
    slack,
    service,
    runs,
    baseUrl,
    waitForRun,
    async requestAndApprove() {
      const before = slack.messages({ channel: OPS_CHANNEL }).length;
      const command = await requester.command({
        text: `${lab.info.cluster.name} --exec`,
        userId: REQUESTER,
        channelId: OPS_CHANNEL,
        responseUrl: slack.responseUrl('command'),
      });
      if (command.status !== 200) throw new Error(`the command was answered ${command.status}`);
      const planOf = () =>
        slack
          .messages({ channel: OPS_CHANNEL })
          .slice(before)
          .find((m) => !m.threadTs && buttonValue(m, 'approve'));
      await slack.waitFor(() => planOf() !== undefined, 20_000);
      const plan = planOf() as StoredMessage;
      const runId = buttonValue(plan, 'approve') as string;
      const click = await requester.click({
        actionId: 'approve',
        value: runId,
        userId: APPROVER,
        channelId: OPS_CHANNEL,
        messageTs: plan.ts,
        responseUrl: slack.responseUrl('approve'),
      });
      if (click.status !== 200) throw new Error(`the approval was answered ${click.status}`);
      return { runId, messageTs: plan.ts };
    },
    async scrape() {
      const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
      if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
      return parseMetrics(await response.text());
    },
    async stop() {
      await service.stop();
      redis.disconnect();
      await Promise.all([lab.stop(), redisServer.stop(), slack.close()]);
    },
  };
}

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricSamples {
  readonly samples: MetricSample[];
  /** The sum of the samples of `name` whose labels include `labels`; 0 when there are none. */
  value(name: string, labels?: Record<string, string>): number;
  has(name: string, labels?: Record<string, string>): boolean;
}

/** Prometheus' text format: `name{a="x",b="y"} value` lines; comments skipped. */
export function parseMetrics(text: string): MetricSamples {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key as string] = value as string;
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  const matching = (name: string, labels: Record<string, string> = {}) =>
    samples.filter(
      (s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value),
    );
  return {
    samples,
    value: (name, labels) => matching(name, labels).reduce((sum, s) => sum + s.value, 0),
    has: (name, labels) => matching(name, labels).length > 0,
  };
}

export function buttonValue(message: StoredMessage, actionId: string): string | undefined {
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

export { freePort };
