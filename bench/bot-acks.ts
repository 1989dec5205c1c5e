/**
 * Slash-command ack latency: `count` correctly signed commands sent at once to the bot's HTTP
 * receiver, timed from sending to the response headers (what Slack's 3-second ack limit measures).
 * `help` is acked with its answer, `status` acked then answered via response_url, a dry run acked
 * then planned against the lab.
 */

import { type BotFixture, OPS_CHANNEL, REQUESTER } from './bot-fixture.js';
import { percentile, round } from './stats.js';

export interface AckBatch {
  command: string;
  concurrent: number;
  answered200: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The bot process's resident memory after the batch. */
  botRssMiB: number;
}

const COMMANDS = [
  { label: 'help', text: 'help' },
  { label: 'status', text: 'status' },
  { label: 'dry run', text: 'CLUSTER-1' },
];
const WARM_UP = 5;

export async function measureAcks(fixture: BotFixture, concurrent: number): Promise<AckBatch[]> {
  const batches: AckBatch[] = [];
  for (const { label, text } of COMMANDS) {
    // A long-running bot is warm: a few sequential commands first, not timed.
    for (let i = 0; i < WARM_UP; i++) await send(fixture, text, `warm-${label}-${i}`);
    const answers = await Promise.all(
      Array.from({ length: concurrent }, (_, i) => send(fixture, text, `${label}-${i}`)),
    );
    await idle(fixture);
    const ms = answers.map((a) => a.ms);
    const rss = fixture.service.lines.filter((l) => l.kind === 'usage').at(-1)?.rssBytes;
    batches.push({
      command: label,
      concurrent,
      answered200: answers.filter((a) => a.status === 200).length,
      p50Ms: round(percentile(ms, 50), 1),
      p90Ms: round(percentile(ms, 90), 1),
      p99Ms: round(percentile(ms, 99), 1),
      maxMs: round(percentile(ms, 100), 1),
      botRssMiB: round(Number(rss ?? Number.NaN) / 2 ** 20, 0),
    });
  }
  return batches;
}

function send(fixture: BotFixture, text: string, id: string) {
  return fixture.requester.command({
    text,
    userId: REQUESTER,
    channelId: OPS_CHANNEL,
    responseUrl: fixture.slack.responseUrl(id),
  });
}

/** The work behind the acks (plans, refusals, response_url answers) is done before the next batch. */
async function idle(fixture: BotFixture): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await fixture.runs.activeRun('CLUSTER-1')) !== undefined || (await planning(fixture))) {
    if (Date.now() > deadline) throw new Error('the bot did not finish the dry runs within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function planning(fixture: BotFixture): Promise<boolean> {
  const ids = await fixture.redis.zrange(`${fixture.redisServer.prefix}:runs:CLUSTER-1`, '0', '-1');
  for (const id of ids) if ((await fixture.runs.get(String(id)))?.state === 'planning') return true;
  return false;
}
