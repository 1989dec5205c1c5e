/**
 * The run reporter rendering a real engine run against the lab into a Slack thread served by the
 * local Web API server: one message per host updated as it goes, the cluster steps, the ending,
 * and the root message's progress and buttons; through a Slack outage, nothing is lost.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { loadConfig } from '../../src/config.js';
import type { RunOutcome } from '../../src/engine/outcome.js';
import { runRollingReboot } from '../../src/engine/run.js';
import type { RunRecord, RunReporter } from '../../src/queue/contracts.js';
import { createEngineDeps } from '../../src/runtime.js';
import { rootMessage } from '../../src/slack/blocks.js';
import { createSlackRunReporter } from '../../src/slack/run-reporter.js';
import { chatApiOf, createSlackWebClient, SlackWriter } from '../../src/slack/slack-writer.js';
import { FAST_ENGINE_ENV, startTestLab } from '../support/lab-cli.js';
import { type SlackApiServer, type StoredMessage, startSlackApiServer } from '../support/slack-api-server.js';

const TOKEN = 'xoxb-test-reporter';
const CHANNEL = 'COPS';

let lab: Lab | undefined;
let api: SlackApiServer | undefined;
let writer: SlackWriter | undefined;
afterEach(async () => {
  writer?.close();
  await Promise.all([lab?.stop(), api?.close()]);
  lab = undefined;
  api = undefined;
  writer = undefined;
});

const text = (message: StoredMessage | undefined) => JSON.stringify(message?.blocks ?? []);
const actionIds = (message: StoredMessage | undefined) =>
  (message?.blocks ?? [])
    .filter(
      (b): b is { type: 'actions'; elements: Array<{ action_id: string }> } =>
        (b as { type: string }).type === 'actions',
    )
    .flatMap((b) => b.elements.map((e) => e.action_id));

/** Posts the run's root message as the bot would have, then runs the engine with the reporter attached. */
async function reportRun(
  currentLab: Lab,
  env: Record<string, string> = {},
): Promise<{ run: RunRecord; outcome: RunOutcome; reporter: RunReporter; server: SlackApiServer }> {
  const server = await startSlackApiServer({ token: TOKEN });
  api = server;
  writer = new SlackWriter({
    api: chatApiOf(createSlackWebClient({ botToken: TOKEN, apiUrl: server.apiUrl })),
    retryMs: 30_000,
    minIntervalMs: 20,
    initialBackoffMs: 50,
    maxBackoffMs: 200,
  });
  let run: RunRecord = {
    runId: 'run-1',
    cluster: 'CLUSTER-1',
    exec: true,
    options: { threads: 5, ignoreHosts: [], restorePlacement: false, step: false },
    state: 'approved',
    requestedBy: 'UREQ',
    channel: CHANNEL,
    createdAt: new Date().toISOString(),
    approvedBy: 'UAPP',
    approvedAt: new Date().toISOString(),
    hostsTotal: 3,
    hostsDone: 0,
  };
  const ts = await writer.channel(CHANNEL).post(rootMessage(run)).ts;
  run = { ...run, messageTs: ts as string };
  const reporter = createSlackRunReporter({ writer, worker: 'worker-a:42' })(run);
  const config = loadConfig({
    ...currentLab.env(),
    ...FAST_ENGINE_ENV,
    STATE_DIR: mkdtempSync(join(tmpdir(), 'crb-reporter-')),
    ...env,
  });
  const deps = createEngineDeps(config, {
    emit: (event) => reporter.event(run, { ...event, at: new Date().toISOString() }),
  });
  await reporter.started({ ...run, state: 'running' }, false);
  const outcome = await runRollingReboot(
    deps,
    { cluster: 'CLUSTER-1', exec: true, threads: 5, ignoreHosts: [], restorePlacement: false },
    { abortRequested: () => false },
  );
  const finalState =
    outcome.status === 'done' ? 'done' : outcome.status === 'needs_attention' ? 'needs_attention' : 'failed';
  await reporter.finished({ ...run, state: finalState }, outcome);
  await reporter.flush(15_000);
  return { run, outcome, reporter, server };
}

describe('the Slack run reporter', () => {
  it('renders a whole run into the thread, and catches up after a Slack outage mid-run', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6, haEnabled: true, autoPoweron: true });
    const current = lab;
    // Slack is down for a while once the run has started: posts and updates queue up meanwhile.
    const outage = (async () => {
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          if (current.log.ofKind('host.disabled').length > 0) {
            clearInterval(timer);
            resolve();
          }
        }, 10);
      });
      api?.fail('chat.postMessage', { status: 503 }, 3);
      api?.fail('chat.update', { status: 500 }, 3);
    })();
    const { run, outcome, server } = await reportRun(current);
    await outage;
    expect(outcome.status).toBe('done');
    expect(server.calls().filter((c) => c.answer.startsWith('HTTP 5')).length).toBeGreaterThan(0);

    const thread = server.messages({ threadTs: run.messageTs });
    const hostMessages = thread.filter((m) => m.text.startsWith('Host '));
    expect(hostMessages.map((m) => m.text)).toEqual([
      expect.stringMatching(/^Host 1\/3 \S+: done$/),
      expect.stringMatching(/^Host 2\/3 \S+: done$/),
      expect.stringMatching(/^Host 3\/3 \S+: done$/),
    ]);
    const planned = lab.info.hosts.map((h) => h.name);
    for (const message of hostMessages) {
      const body = text(message);
      expect(planned.some((name) => body.includes(name))).toBe(true);
      for (const step of ['disabled', 'rebooting', 'down after', 'up after', 'enabled', 'done:']) {
        expect(body).toContain(step);
      }
    }
    // One post per host, then updates: never a second message for the same host.
    expect(new Set(hostMessages.map((m) => m.text.split(':')[0])).size).toBe(3);
    expect(text(hostMessages[0])).toMatch(/migrations (\d+)\/\1/);

    const titles = thread.map((m) => m.text);
    expect(titles[0]).toBe('Run started');
    expect(titles).toContain('Preparing the cluster');
    expect(titles).toContain('Restoring the cluster');
    expect(text(thread.find((m) => m.text === 'Preparing the cluster'))).toContain('Pool HA disabled');
    expect(text(thread.find((m) => m.text === 'Restoring the cluster'))).toContain('Pool HA restored');
    const summary = server
      .calls('chat.postMessage')
      .find((c) => String(c.body.text).startsWith('Rolling reboot done'));
    expect(summary?.body.reply_broadcast).toBe('true');

    const root = server.message(run.messageTs as string);
    expect(root?.text).toBe('Rolling reboot of CLUSTER-1: done');
    expect(text(root)).toContain('hosts done 3 of 3');
    expect(text(root)).toContain('Approved by <@UAPP>');
    expect(actionIds(root)).toEqual([]);
    expect(lab.checkInvariants({ expectRestored: true }).violations).toEqual([]);
  });

  it('shows a host that does not come back: halted host, what is left changed, Resume and Finish', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6 });
    lab.faults.hostNeverComesBack('host2');
    const { run, outcome, server } = await reportRun(lab, { HOST_REBOOT_TIMEOUT_SECONDS: '2' });
    expect(outcome.status).toBe('needs_attention');
    const thread = server.messages({ threadTs: run.messageTs });
    const host2 = thread.find((m) => /^Host \d\/3 host2/.test(m.text));
    expect(host2?.text).toMatch(/halted$/);
    const attention = thread.find((m) => m.text === 'host2 needs attention');
    expect(text(attention)).toContain('Left changed (needs a human)');
    expect(text(attention)).toContain('CloudStack cluster CLUSTER-1 is Unmanaged');
    expect(thread.some((m) => /^Host \d\/3 host3/.test(m.text))).toBe(false);
    const root = server.message(run.messageTs as string);
    expect(root?.text).toBe('Rolling reboot of CLUSTER-1: needs attention');
    expect(actionIds(root)).toEqual(['resume', 'finish']);
    expect(text(root)).toContain('host2: host2 is not back');
  });
});
