/**
 * One worker process (WORKER_CONCURRENCY = number of clusters) rebooting many small lab clusters
 * at once, reporting each into its own Slack channel thread. The worker samples its own memory
 * and CPU; the labs, Redis and the Slack API run elsewhere, so the numbers are the worker's alone.
 */
import { randomUUID } from 'node:crypto';
import type { Lab } from '../lab/lab.js';
import { startLab } from '../lab/lab.js';
import type { LabTimings } from '../lab/pool-model.js';
import { FINAL_STATES, type RunRecord } from '../src/queue/contracts.js';
import { BullRunQueue } from '../src/queue/run-queue.js';
import { RedisRunStore } from '../src/queue/run-store.js';
import { FAST_ENGINE_ENV } from '../test/support/lab-cli.js';
import { isChat, type SlackTraffic, slackTraffic } from './bot-approval.js';
import { BOT_TOKEN, type BotFixture, settled } from './bot-fixture.js';
import { spawnBenchChild } from './processes/child.js';
import type { UsageSample } from './processes/usage.js';
import type { WorkerProcessConfig } from './processes/worker-process.js';
import { max, round } from './stats.js';

export interface LoadConfig {
  clusters: number;
  hostsPerCluster: number;
  vmsPerCluster: number;
  timings: LabTimings;
  preset: string;
  pollIntervalMs: number;
  cloudstack: { unmanageDelayMs: number; reconnectDelayMs: number };
  /** Quick runs only: shorter spacing of Slack calls, so the threads drain in seconds (rates then mean nothing). */
  slackMinIntervalMs?: number;
}

export interface LoadResult {
  config: Omit<LoadConfig, 'timings'>;
  runsDone: number;
  runStates: Record<string, number>;
  invariantsHeld: number;
  wallS: number;
  idleRssMB: number;
  peakRssMB: number;
  /** The kernel's high-water mark of the worker's resident memory, start-up included. */
  maxRssMB: number;
  /** The JavaScript heap at its sampled peak: what of the RSS is live objects. */
  peakHeapUsedMB: number;
  cpuS: number;
  cpuPercentOfOneCore: number;
  slack: SlackTraffic;
}

/** Megabytes as the target states them (10^6 bytes). */
const MB = 1e6;

export async function measureWorkerLoad(
  fixture: BotFixture,
  config: LoadConfig,
  progress: (line: string) => void,
): Promise<LoadResult> {
  const labs: Lab[] = [];
  const prefix = `${fixture.redisServer.prefix}load`;
  const queue = new BullRunQueue({ connection: fixture.redis, prefix, retentionMs: 3_600_000 });
  const runs = new RedisRunStore(fixture.redis, prefix);
  try {
    for (let i = 0; i < config.clusters; i++) {
      labs.push(
        await startLab({
          hosts: config.hostsPerCluster,
          vms: config.vmsPerCluster,
          seed: 100 + i,
          clusterName: `CLUSTER-${i + 1}`,
          timings: config.timings,
          cloudstackTimings: config.cloudstack,
        }),
      );
    }
    progress(`bot: ${labs.length} lab clusters up; starting one worker with concurrency ${config.clusters}`);
    const workerConfig: WorkerProcessConfig = {
      redisUrl: fixture.redisServer.url,
      prefix,
      concurrency: config.clusters,
      clusters: Object.fromEntries(
        labs.map((lab) => [
          lab.info.cluster.name,
          { ...lab.env(), ...FAST_ENGINE_ENV, POLL_INTERVAL_MS: String(config.pollIntervalMs) },
        ]),
      ),
      slack: {
        apiUrl: fixture.slack.apiUrl,
        botToken: BOT_TOKEN,
        ...(config.slackMinIntervalMs === undefined ? {} : { minIntervalMs: config.slackMinIntervalMs }),
      },
    };
    const worker = spawnBenchChild('bench/processes/worker-process.ts', {
      BENCH_WORKER_CONFIG: JSON.stringify(workerConfig),
    });
    try {
      await worker.waitFor((line) => line.kind === 'ready', 'the worker to start', 60_000);
      const idle = lastUsage(worker.lines);
      const records = await Promise.all(
        labs.map((lab, i) => approvedRun(fixture, runs, lab, `CLOAD${i + 1}`)),
      );
      const startedAt = Date.now();
      const usageBefore = lastUsage(worker.lines);
      for (const record of records) await queue.enqueue(record.runId);
      const finished = await Promise.all(records.map((r) => untilFinal(runs, r.runId, 300_000)));
      const endedAt = Date.now();
      const usageAfter = lastUsage(worker.lines);
      await settled(() => fixture.slack.calls().length, 2_000, 60_000);
      const during = usageSamples(worker.lines).filter((u) => u.at >= startedAt && u.at <= endedAt + 250);
      const cpuMs =
        usageAfter.cpuUserMs + usageAfter.cpuSystemMs - (usageBefore.cpuUserMs + usageBefore.cpuSystemMs);
      const channels = new Set(records.map((r) => r.channel));
      const calls = fixture.slack
        .calls()
        .filter((c) => c.at >= startedAt && channels.has(String(c.body.channel ?? '')) && isChat(c));
      const states: Record<string, number> = {};
      for (const run of finished) states[run.state] = (states[run.state] ?? 0) + 1;
      const { timings: _timings, ...reported } = config;
      return {
        config: reported,
        runsDone: states.done ?? 0,
        runStates: states,
        invariantsHeld: labs.filter((lab) => lab.checkInvariants().ok).length,
        wallS: round((endedAt - startedAt) / 1000, 1),
        idleRssMB: round(idle.rssBytes / MB, 1),
        peakRssMB: round(max(during.map((u) => u.rssBytes)) / MB, 1),
        maxRssMB: round(usageAfter.maxRssBytes / MB, 1),
        peakHeapUsedMB: round(max(during.map((u) => u.heapUsedBytes)) / MB, 1),
        cpuS: round(cpuMs / 1000, 1),
        cpuPercentOfOneCore: round((cpuMs / (endedAt - startedAt)) * 100, 0),
        slack: slackTraffic(calls, config.clusters * config.hostsPerCluster),
      };
    } finally {
      await worker.stop();
    }
  } finally {
    await queue.close();
    for (const lab of labs) await lab.stop();
  }
}

function usageSamples(lines: ReadonlyArray<{ kind: string }>): UsageSample[] {
  return lines.filter((l) => l.kind === 'usage') as unknown as UsageSample[];
}

function lastUsage(lines: ReadonlyArray<{ kind: string }>): UsageSample {
  const sample = usageSamples(lines).at(-1);
  if (!sample) throw new Error('the worker reported no usage sample');
  return sample;
}

/** A run as the bot leaves it after a second person's approval, with its root message posted. */
async function approvedRun(
  fixture: BotFixture,
  runs: RedisRunStore,
  lab: Lab,
  channel: string,
): Promise<RunRecord> {
  const response = await fetch(`${fixture.slack.apiUrl}chat.postMessage`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BOT_TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ channel, text: `Rolling reboot of ${lab.info.cluster.name}` }).toString(),
    signal: AbortSignal.timeout(10_000),
  });
  const posted = (await response.json()) as { ts?: string };
  if (!posted.ts) throw new Error(`the Slack API server did not post the root message in ${channel}`);
  const now = new Date().toISOString();
  const record: RunRecord = {
    runId: randomUUID(),
    cluster: lab.info.cluster.name,
    exec: true,
    options: { threads: 5, ignoreHosts: [], restorePlacement: false, step: false },
    state: 'approved',
    requestedBy: 'UREQ',
    channel,
    messageTs: posted.ts,
    createdAt: now,
    approvedBy: 'UAPP',
    approvedAt: now,
    hostsTotal: lab.info.hosts.length,
    hostsDone: 0,
  };
  await runs.create(record);
  return record;
}

async function untilFinal(runs: RedisRunStore, runId: string, timeoutMs: number): Promise<RunRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await runs.get(runId);
    if (run && (FINAL_STATES.includes(run.state) || run.state === 'needs_attention')) return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} still ${run?.state} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
