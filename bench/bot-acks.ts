/**
 * Slash-command ack latency: `concurrent` correctly signed commands sent at once to the bot's HTTP
 * receiver, timed from sending to the response headers (what Slack's 3-second ack limit measures).
 * `help` is acked with its answer, `status` acked then answered via response_url, a dry run acked
 * then planned against the lab. The same load against a bare HTTP server gives the floor: what the
 * generator and the loopback cost on this machine.
 */
import { type BotFixture, OPS_CHANNEL, REQUESTER, SIGNING_SECRET } from './bot-fixture.js';
import { spawnBenchChild } from './processes/child.js';
import { type CommandAnswer, sendAtOnce } from './signed-commands.js';
import { percentile, round } from './stats.js';

export interface AckBatch {
  command: string;
  /** 'bot', or 'floor' for the bare server. */
  target: 'bot' | 'floor';
  /** All at once, or one after the other (latency without queueing, for comparison). */
  mode: 'burst' | 'sequential';
  concurrent: number;
  sent: number;
  answered200: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The bot process's resident memory after the batch. */
  botRssMB?: number;
  /** Dry runs: how the runs the batch created ended (planned in full, or refused as a duplicate). */
  runStates?: Record<string, number>;
}

/** Commands sent one after the other, for the latency of one command with nothing queued. */
const SEQUENTIAL = 50;

export const ACK_COMMANDS = {
  help: 'help',
  status: 'status',
  'dry run': 'CLUSTER-1',
} as const;

export type AckCommand = keyof typeof ACK_COMMANDS;

/**
 * One kind of command, `concurrent` at once, after an untimed batch (a running bot is warm). A dry
 * run that does not collide with another posts its plan to the channel, about one a second: run
 * that kind last, or let the bot's Slack queue drain before measuring anything after it.
 */
export async function measureBurst(
  fixture: BotFixture,
  concurrent: number,
  command: AckCommand,
): Promise<AckBatch> {
  const url = fixture.requester.eventsUrl;
  const text = ACK_COMMANDS[command];
  const createsRuns = command === 'dry run';
  const warmSince = Date.now();
  await burst(url, concurrent, text, fixture, `warm-${command}`);
  await idle(fixture, warmSince, createsRuns);
  const since = Date.now();
  const answers = await burst(url, concurrent, text, fixture, command);
  await idle(fixture, since, createsRuns);
  const rss = fixture.service.lines.filter((l) => l.kind === 'usage').at(-1)?.rssBytes;
  const runStates = await statesSince(fixture, since);
  return {
    ...summarize(command, 'bot', 'burst', answers),
    botRssMB: round(Number(rss ?? Number.NaN) / 1e6, 0),
    ...(Object.keys(runStates).length > 0 ? { runStates } : {}),
  };
}

export async function measureSequential(fixture: BotFixture): Promise<AckBatch> {
  const answers: CommandAnswer[] = [];
  for (let i = 0; i < SEQUENTIAL; i++)
    answers.push(...(await burst(fixture.requester.eventsUrl, 1, 'help', fixture, `one-${i}`)));
  return summarize('help', 'bot', 'sequential', answers);
}

export async function measureFloor(concurrent: number): Promise<AckBatch> {
  const echo = spawnBenchChild('bench/processes/echo-process.ts', {});
  try {
    const ready = await echo.waitFor((line) => line.kind === 'ready', 'the bare server', 30_000);
    const url = `http://127.0.0.1:${String(ready.port)}/slack/events`;
    await burst(url, concurrent, 'help');
    return summarize('bare HTTP server (floor)', 'floor', 'burst', await burst(url, concurrent, 'help'));
  } finally {
    await echo.stop();
  }
}

function burst(url: string, concurrent: number, text: string, fixture?: BotFixture, id = 'floor') {
  return sendAtOnce(
    url,
    SIGNING_SECRET,
    Array.from({ length: concurrent }, (_, i) => ({
      text,
      userId: REQUESTER,
      channelId: OPS_CHANNEL,
      responseUrl: fixture ? fixture.slack.responseUrl(`${id}-${i}`) : 'http://127.0.0.1:9/unused',
    })),
  );
}

function summarize(
  command: string,
  target: AckBatch['target'],
  mode: AckBatch['mode'],
  answers: ReadonlyArray<{ status: number; ms: number }>,
): AckBatch {
  const ms = answers.map((a) => a.ms);
  return {
    command,
    target,
    mode,
    concurrent: mode === 'burst' ? answers.length : 1,
    sent: answers.length,
    answered200: answers.filter((a) => a.status === 200).length,
    p50Ms: round(percentile(ms, 50), 1),
    p90Ms: round(percentile(ms, 90), 1),
    p99Ms: round(percentile(ms, 99), 1),
    maxMs: round(percentile(ms, 100), 1),
  };
}

/**
 * The work behind the acks is done before anything else is measured: the runs the batch created (a
 * dry run creates one after its ack, unless refused first) have stopped appearing and none is
 * still planning.
 */
async function idle(fixture: BotFixture, since: number, expectsRuns: boolean): Promise<void> {
  if (!expectsRuns) return;
  const deadline = Date.now() + 180_000;
  let last = -1;
  let stableSince = Date.now();
  for (;;) {
    const states = await statesSince(fixture, since);
    const created = Object.values(states).reduce((total, n) => total + n, 0);
    if (created !== last) {
      last = created;
      stableSince = Date.now();
    } else if (states.planning === undefined && Date.now() - stableSince >= 1_000) {
      return;
    }
    if (Date.now() > deadline)
      throw new Error(`the bot did not finish the dry runs within 180 s: ${JSON.stringify(states)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The states of the cluster's runs created since `since` (the run store indexes them by creation time). */
async function statesSince(fixture: BotFixture, since: number): Promise<Record<string, number>> {
  const ids = await fixture.redis.zrangebyscore(
    `${fixture.redisServer.prefix}:runs:CLUSTER-1`,
    since,
    '+inf',
  );
  const states: Record<string, number> = {};
  for (const id of ids) {
    const state = (await fixture.runs.get(String(id)))?.state ?? 'missing';
    states[state] = (states[state] ?? 0) + 1;
  }
  return states;
}
