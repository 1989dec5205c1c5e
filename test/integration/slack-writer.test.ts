/**
 * The Slack writer against a local Web API server over real sockets, through the real WebClient:
 * 429 with Retry-After, 5xx outages, hangs, coalesced updates and per-channel spacing, judged by
 * what the server received and when.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { chatApiOf, createSlackWebClient, SlackWriter } from '../../src/slack/slack-writer.js';
import { type SlackApiServer, startSlackApiServer } from '../support/slack-api-server.js';

const TOKEN = 'xoxb-test-writer';
let server: SlackApiServer | undefined;
let writer: SlackWriter | undefined;

afterEach(async () => {
  writer?.close();
  writer = undefined;
  await server?.close();
  server = undefined;
});

async function setUp(options: { minIntervalMs?: number; retryMs?: number; timeoutMs?: number } = {}) {
  server = await startSlackApiServer({ token: TOKEN });
  const client = createSlackWebClient(
    { botToken: TOKEN, apiUrl: server.apiUrl },
    { timeoutMs: options.timeoutMs },
  );
  writer = new SlackWriter({
    api: chatApiOf(client),
    retryMs: options.retryMs ?? 20_000,
    minIntervalMs: options.minIntervalMs ?? 20,
    initialBackoffMs: 50,
    maxBackoffMs: 200,
  });
  return { server, writer };
}

const content = (text: string) => ({
  text,
  blocks: [{ type: 'section' as const, text: { type: 'mrkdwn' as const, text } }],
});

describe('the Slack writer', () => {
  it('honours a 429 Retry-After, then delivers the post', async () => {
    const { server, writer } = await setUp();
    server.fail('chat.postMessage', { status: 429, retryAfterSeconds: 1 });
    const ts = await writer.channel('C1').post(content('hello')).ts;
    const calls = server.calls('chat.postMessage');
    expect(calls.map((c) => c.answer)).toEqual(['HTTP 429', 'ok']);
    expect((calls[1]?.at ?? 0) - (calls[0]?.at ?? 0)).toBeGreaterThanOrEqual(980);
    expect(ts).toBeDefined();
    expect(server.message(ts as string)?.text).toBe('hello');
    expect(calls[1]?.token).toBe(TOKEN);
  });

  it('queues posts and updates through a run of 500s and delivers them all, in order, afterwards', async () => {
    const { server, writer } = await setUp();
    server.fail('chat.postMessage', { status: 500 }, 4);
    const channel = writer.channel('C1');
    const first = channel.post(content('one'));
    first.update(content('one, updated during the outage'));
    const second = channel.post(content('two'));
    const third = channel.post(content('three'), { threadTs: '1700000000.000001' });
    await writer.flush(10_000);
    expect(server.calls('chat.postMessage').filter((c) => c.answer === 'HTTP 500')).toHaveLength(4);
    expect(server.messages().map((m) => m.text)).toEqual(['one, updated during the outage', 'two', 'three']);
    expect(server.messages()[2]?.threadTs).toBe('1700000000.000001');
    expect(await Promise.all([first.ts, second.ts, third.ts])).not.toContain(undefined);
    expect(writer.stats.dropped).toBe(0);
  });

  it('retries a call that hangs past the request timeout', async () => {
    const { server, writer } = await setUp({ timeoutMs: 300 });
    server.fail('chat.postMessage', { hang: true });
    const ts = await writer.channel('C1').post(content('after a hang')).ts;
    expect(server.calls('chat.postMessage').map((c) => c.answer)).toEqual(['hang', 'ok']);
    expect(server.message(ts as string)?.text).toBe('after a hang');
  });

  it('coalesces queued updates of one message: only the latest content is sent', async () => {
    const { server, writer } = await setUp({ minIntervalMs: 300 });
    const ref = writer.channel('C1').post(content('v0'));
    for (let i = 1; i <= 10; i += 1) ref.update(content(`v${i}`));
    await writer.flush(5_000);
    const updates = server.calls('chat.update');
    expect(updates).toHaveLength(1);
    expect(updates[0]?.body.text).toBe('v10');
    expect(server.message((await ref.ts) as string)?.text).toBe('v10');
  });

  it('an update that keeps failing takes the newest content when it finally goes through', async () => {
    const { server, writer } = await setUp();
    const ref = writer.channel('C1').post(content('v0'));
    await ref.ts;
    server.fail('chat.update', { status: 503 }, 3);
    ref.update(content('v1'));
    await server.waitFor((s) => s.calls('chat.update').length >= 1);
    ref.update(content('v2'));
    ref.update(content('v3'));
    await writer.flush(5_000);
    const answers = server.calls('chat.update').map((c) => [c.answer, c.body.text]);
    expect(answers.at(-1)).toEqual(['ok', 'v3']);
    expect(answers.filter(([answer]) => answer === 'ok')).toHaveLength(1);
  });

  it('sends at most one call per 1.1 s per channel, channels independently', async () => {
    const { server, writer } = await setUp({ minIntervalMs: 1100 });
    const started = Date.now();
    for (const channel of ['CA', 'CB']) {
      for (let i = 0; i < 3; i += 1) writer.channel(channel).post(content(`${channel}${i}`));
    }
    await writer.flush(10_000);
    for (const channel of ['CA', 'CB']) {
      const times = server
        .calls('chat.postMessage')
        .filter((c) => c.body.channel === channel)
        .map((c) => c.at);
      expect(times).toHaveLength(3);
      // Spaced 1.1 s at the sender; at the server, connection set-up jitter eats a little of that.
      for (let i = 1; i < times.length; i += 1) {
        expect((times[i] as number) - (times[i - 1] as number)).toBeGreaterThanOrEqual(1000);
      }
      // The first post of each channel is not held back by the other channel.
      expect((times[0] as number) - started).toBeLessThan(500);
    }
    expect(server.messages({ channel: 'CA' }).map((m) => m.text)).toEqual(['CA0', 'CA1', 'CA2']);
  });

  it('gives up after retryMs without throwing; later updates of that message are dropped too', async () => {
    const { server, writer } = await setUp({ retryMs: 400 });
    server.fail('chat.postMessage', { status: 500 }, 1000);
    const lost = writer.channel('C1').post(content('lost'));
    expect(await lost.ts).toBeUndefined();
    expect(lost.error).toBe('HTTP 500');
    expect(server.calls('chat.postMessage').length).toBeGreaterThan(1);
    lost.update(content('ignored: the message never existed'));
    await writer.flush(1_000);
    expect(server.calls('chat.update')).toHaveLength(0);
    expect(writer.stats.dropped).toBe(1);
  });

  it('does not retry platform errors such as not_in_channel', async () => {
    const { server, writer } = await setUp();
    server.fail('chat.postMessage', { error: 'not_in_channel' });
    const refused = writer.channel('C1').post(content('not in channel'));
    expect(await refused.ts).toBeUndefined();
    expect(refused.error).toBe('not_in_channel');
    const next = await writer.channel('C1').post(content('the next one goes out')).ts;
    expect(server.calls('chat.postMessage').map((c) => c.answer)).toEqual(['not_in_channel', 'ok']);
    expect(server.message(next as string)?.text).toBe('the next one goes out');
  });
});
