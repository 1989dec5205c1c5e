/**
 * The stall alarm in a real run: one lab host takes far longer than STALL_ALARM_SECONDS to come
 * back from its reboot. The run's thread gets exactly one alert, mentioning the requester and the
 * approver, posted while that host was down; once the host is back the same message says the
 * stall is over, and the run finishes normally.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import {
  APPROVER,
  OPS_CHANNEL,
  type OpsHarness,
  REQUESTER,
  startOpsHarness,
} from '../support/ops-service.js';

const SLOW_HOST = 'host2';
const STALL_SECONDS = 2;
const EXTRA_BOOT_MS = 6_000;

let h: OpsHarness;
const slowHost: { downAt?: number; upAt?: number } = {};
const logLines: Array<{ time: string; msg: string; runId?: string; host?: string }> = [];

beforeAll(async () => {
  const logger = createLogger(
    { level: 'info' },
    { write: (line: string) => void logLines.push(JSON.parse(line)) },
  );
  h = await startOpsHarness({ env: { STALL_ALARM_SECONDS: String(STALL_SECONDS) }, logger });
  h.lab.faults.slowReboot(SLOW_HOST, EXTRA_BOOT_MS);
  h.lab.log.subscribe((op) => {
    if (op.host !== SLOW_HOST) return;
    if (op.kind === 'host.went_down') slowHost.downAt = Date.now();
    if (op.kind === 'host.came_up') slowHost.upAt = Date.now();
  });
}, 60_000);

afterAll(async () => {
  await h?.stop();
});

describe('the stall alarm', () => {
  it('posts exactly one alert in the thread, mentioning requester and approver, then marks it over', async () => {
    const { runId, messageTs } = await h.requestAndApprove();
    const isAlarm = (text: string) => text.startsWith('Stall alarm');
    await h.slack.waitFor(
      (s) => s.messages({ threadTs: messageTs }).some((m) => isAlarm(m.text)),
      EXTRA_BOOT_MS + 15_000,
    );
    const finished = await h.waitForRun(runId, ['done', 'failed', 'aborted', 'needs_attention'], 60_000);
    expect(finished.state).toBe('done');
    expect((await h.scrape()).value('crb_stall_alarms_total', { cluster: 'CLUSTER-1' })).toBe(1);
    await h.service.stop(); // sends what is still queued for Slack

    const alarms = h.slack.messages({ threadTs: messageTs }).filter((m) => isAlarm(m.text));
    expect(alarms).toHaveLength(1);
    const alarm = alarms[0];
    const posted = h.slack
      .calls('chat.postMessage')
      .find((c) => c.answer === 'ok' && isAlarm(String(c.body.text)));
    expect(posted?.body.thread_ts).toBe(messageTs);
    expect(posted?.body.channel).toBe(OPS_CHANNEL);
    expect(String(posted?.body.text)).toContain(`<@${REQUESTER}>`);
    expect(String(posted?.body.text)).toContain(`<@${APPROVER}>`);
    expect(JSON.stringify(posted?.body.blocks)).toContain(`\`${SLOW_HOST}\``);
    // Raised while the slow host was down, past the threshold (Slack gets it when the thread's
    // earlier messages are out: the lab makes them faster than Slack's one post a second).
    const raised = logLines.filter((line) => line.msg === 'stall alarm: no progress');
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ runId, host: SLOW_HOST });
    const raisedAt = Date.parse(raised[0]?.time as string);
    expect(raisedAt).toBeGreaterThanOrEqual((slowHost.downAt as number) + STALL_SECONDS * 1000);
    expect(raisedAt).toBeLessThan(slowHost.upAt as number);
    // And marked over once the host was back: the same message, updated, nobody pinged again.
    expect(alarm?.text).toMatch(/^Stall alarm over: CLUSTER-1 made progress again/);
    expect(alarm?.updates).toBe(1);

    expect(h.lab.checkInvariants({ expectRestored: true }).violations).toEqual([]);
  });
});
