/**
 * Section 3 of issue 5: the bot. Ack latency of concurrent signed slash commands, approval click
 * to first host disabled, Slack Web API calls per host and per-channel rate, and one worker's
 * memory and CPU with many clusters rebooting at once.
 */
import { TIMING_PRESETS } from '../lab/timing-presets.js';
import { type AckBatch, measureBurst, measureFloor, measureSequential } from './bot-acks.js';
import { type ApprovalSample, measureApprovals } from './bot-approval.js';
import { startBotFixture } from './bot-fixture.js';
import { type LoadConfig, type LoadResult, measureWorkerLoad } from './bot-load.js';
import { median, round } from './stats.js';
import type { Table } from './table.js';

export interface BotBenchConfig {
  concurrentCommands: number;
  approvalSamples: number;
  botLab: { preset: 'fast'; hosts: number; vms: number; pollIntervalMs: number };
  load: LoadConfig;
}

export interface BotResult {
  config: Omit<BotBenchConfig, 'load'> & { load: Omit<LoadConfig, 'timings'> };
  acks: AckBatch[];
  approvals: ApprovalSample[];
  load: LoadResult;
  targets: { ackP99Under100Ms: boolean; workerRssUnder250MB: boolean };
}

/** Slack's documented guidance for posting: about one message per second per channel. */
const SLACK_PER_CHANNEL_PER_SECOND = 1;

export function botConfig(quick: boolean): BotBenchConfig {
  return quick
    ? {
        concurrentCommands: 20,
        approvalSamples: 1,
        botLab: { preset: 'fast', hosts: 2, vms: 4, pollIntervalMs: 100 },
        load: {
          clusters: 2,
          hostsPerCluster: 2,
          vmsPerCluster: 4,
          timings: TIMING_PRESETS.fast,
          preset: 'fast',
          pollIntervalMs: 100,
          cloudstack: { unmanageDelayMs: 100, reconnectDelayMs: 200 },
          slackMinIntervalMs: 50,
        },
      }
    : {
        concurrentCommands: 200,
        approvalSamples: 3,
        botLab: { preset: 'fast', hosts: 3, vms: 6, pollIntervalMs: 250 },
        load: {
          clusters: 20,
          hostsPerCluster: 3,
          vmsPerCluster: 6,
          timings: TIMING_PRESETS.demo,
          preset: 'demo',
          pollIntervalMs: 250,
          cloudstack: { unmanageDelayMs: 1_000, reconnectDelayMs: 2_000 },
        },
      };
}

export async function runBotBench(
  config: BotBenchConfig,
  progress: (line: string) => void,
): Promise<{ result: BotResult; tables: Table[] }> {
  progress('bot: starting Redis, the Slack API stand-in, a lab and the bot process');
  const fixture = await startBotFixture({
    hosts: config.botLab.hosts,
    vms: config.botLab.vms,
    timings: TIMING_PRESETS[config.botLab.preset],
    pollIntervalMs: config.botLab.pollIntervalMs,
  });
  try {
    const concurrent = config.concurrentCommands;
    progress(`bot: ${concurrent} signed commands at once: a bare server, then help and status`);
    const acks = [
      await measureFloor(concurrent),
      await measureBurst(fixture, concurrent, 'help'),
      await measureBurst(fixture, concurrent, 'status'),
      await measureSequential(fixture),
    ];
    progress(`bot: ${config.approvalSamples} approved runs, click to first host disabled`);
    const approvals = await measureApprovals(fixture, config.approvalSamples);
    progress(`bot: ${config.load.clusters} clusters rebooting at once in one worker`);
    const load = await measureWorkerLoad(fixture, config.load, progress);
    // Last: the dry runs leave plans queued for the channel, which nothing after this waits for.
    progress(`bot: ${concurrent} dry runs at once`);
    acks.push(await measureBurst(fixture, concurrent, 'dry run'));
    const { timings: _timings, ...loadConfig } = config.load;
    const result: BotResult = {
      config: { ...config, load: loadConfig },
      acks,
      approvals,
      load,
      targets: {
        ackP99Under100Ms: acks
          .filter((a) => a.target === 'bot' && a.mode === 'burst')
          .every((a) => a.p99Ms < 100),
        workerRssUnder250MB: load.peakRssMB < 250 && load.maxRssMB < 250,
      },
    };
    return { result, tables: tablesOf(result) };
  } finally {
    await fixture.stop();
  }
}

function tablesOf(result: BotResult): Table[] {
  const { acks, approvals, load, config } = result;
  const ackTable: Table = {
    title: `Slash-command ack latency, ${config.concurrentCommands} signed commands sent at once`,
    headers: ['command', 'sent', 'answered 200', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'bot RSS after, MB'],
    rows: acks.map((a) => [
      a.command,
      a.mode === 'burst' ? `${a.sent} at once` : `${a.sent}, one at a time`,
      `${a.answered200}/${a.sent}`,
      a.p50Ms,
      a.p90Ms,
      a.p99Ms,
      a.maxMs,
      a.botRssMB,
    ]),
    notes: [
      'Each command signed and its connection opened before the clock starts, then all written at once; timed from its write to the first byte of the answer. One untimed batch first (a running bot is warm). The bot (ROLE=all) runs in its own process.',
      'The floor is the same load against a bare HTTP server in its own process: the load generator and loopback alone.',
      ...acks
        .filter((a) => a.runStates)
        .map(
          (a) =>
            `${a.command}: the runs it created ended ${JSON.stringify(a.runStates)} (refused = a duplicate of one in progress).`,
        ),
      `Target: p99 under 100 ms with the commands sent at once (${result.targets.ackP99Under100Ms ? 'met' : 'missed'}).`,
    ],
  };
  const approvalTable: Table = {
    title: 'Approval click → first host disabled in the lab (ms from the click)',
    headers: [
      'run',
      'click answered',
      'first CloudStack call',
      'updateCluster Unmanaged',
      'pool HA disabled',
      'first host.disable',
      'run ended',
    ],
    rows: approvals.map((a, i) => [
      i + 1,
      a.clickAnsweredMs,
      a.toFirstCloudStackCallMs,
      a.toUnmanageRequestedMs,
      a.toHaDisabledMs,
      a.toFirstHostDisabledMs,
      `${a.runState}${a.invariantsHeld ? '' : ' (invariants VIOLATED)'}`,
    ]),
    notes: [
      `Median click → host.disable: ${round(median(approvals.map((a) => a.toFirstHostDisabledMs)), 0)} ms. Lab: ${config.botLab.hosts} hosts, "${config.botLab.preset}" timings, POLL_INTERVAL_MS=${config.botLab.pollIntervalMs}; the first CloudStack call is the worker's pre-flight.`,
    ],
  };
  const traffic = [
    ...approvals.map((a, i) => ({
      scenario: `approved run ${i + 1} (bot, one channel)`,
      ...a.slack,
      hosts: a.hosts,
    })),
    {
      scenario: `${load.config.clusters} runs at once (worker, a channel each)`,
      ...load.slack,
      hosts: load.config.clusters * load.config.hostsPerCluster,
    },
  ];
  const slackTable: Table = {
    title: 'Slack Web API traffic of a run (chat.postMessage + chat.update, from approval to the end)',
    headers: [
      'scenario',
      'hosts',
      'calls',
      'posts',
      'updates',
      'calls per host',
      'max calls / channel / 1 s',
      'min gap ms',
    ],
    rows: traffic.map((t) => [
      t.scenario,
      t.hosts,
      t.calls,
      t.posts,
      t.updates,
      t.callsPerHost,
      t.maxPerChannelIn1s,
      t.minGapMs,
    ]),
    notes: [
      `Slack's guidance: about ${SLACK_PER_CHANNEL_PER_SECOND} message per second per channel (bursts tolerated briefly); chat.update is Tier 3 (about 50 per minute).`,
      ...(config.load.slackMinIntervalMs === undefined
        ? []
        : [
            `Quick run: the load worker spaced Slack calls ${config.load.slackMinIntervalMs} ms apart instead of the writer's default, so its rates mean nothing.`,
          ]),
    ],
  };
  const loadTable: Table = {
    title: `One worker, ${load.config.clusters} clusters rebooting at once (WORKER_CONCURRENCY ${load.config.clusters})`,
    headers: [
      'clusters × hosts',
      'runs done',
      'invariants held',
      'wall s',
      'RSS idle MB',
      'RSS peak MB',
      'max RSS MB',
      'peak JS heap MB',
      'CPU s',
      'CPU % of one core',
    ],
    rows: [
      [
        `${load.config.clusters} × ${load.config.hostsPerCluster}`,
        `${load.runsDone}/${load.config.clusters}`,
        `${load.invariantsHeld}/${load.config.clusters}`,
        load.wallS,
        load.idleRssMB,
        load.peakRssMB,
        load.maxRssMB,
        load.peakHeapUsedMB,
        load.cpuS,
        load.cpuPercentOfOneCore,
      ],
    ],
    notes: [
      `Labs: "${load.config.preset}" timings, ${load.config.vmsPerCluster} VMs each, POLL_INTERVAL_MS=${load.config.pollIntervalMs}; the labs, Redis and the Slack API stand-in run in other processes. ` +
        `Target: RSS under 250 MB (${result.targets.workerRssUnder250MB ? 'met' : 'missed'}).`,
    ],
  };
  return [ackTable, approvalTable, slackTable, loadTable];
}
