/**
 * Fault matrix: the Slack Web API hangs (accepts requests, never answers) for the whole of a run.
 * The worker reboots the cluster regardless, and once Slack answers again the thread catches up:
 * every host, the summary and the root message, nothing dropped. (429 and 500 answers are covered
 * by slack-writer.test.ts and slack-reporter.test.ts.)
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import type { RunRecord } from '../../src/queue/contracts.js';
import { rootMessage } from '../../src/slack/blocks.js';
import { createSlackRunReporter } from '../../src/slack/run-reporter.js';
import { chatApiOf, createSlackWebClient, SlackWriter } from '../../src/slack/slack-writer.js';
import { startTestLab } from '../support/lab-cli.js';
import {
  type QueueFixture,
  startQueueFixture,
  startTestWorker,
  waitForRunState,
} from '../support/queue-fixtures.js';
import { type SlackApiServer, startSlackApiServer } from '../support/slack-api-server.js';

const TOKEN = 'xoxb-faults-slack';
const CHANNEL = 'COPS';

let fixture: QueueFixture;
let lab: Lab | undefined;
let slack: SlackApiServer | undefined;
let writer: SlackWriter | undefined;

beforeEach(async () => {
  fixture = await startQueueFixture();
});

afterEach(async () => {
  await fixture.stop();
  writer?.close();
  await Promise.all([lab?.stop(), slack?.close()]);
  lab = undefined;
  slack = undefined;
  writer = undefined;
});

describe('the Slack API hangs', () => {
  it('the reboot goes on and finishes; the thread catches up once Slack answers again', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4, haEnabled: true, autoPoweron: true });
    const server = await startSlackApiServer({ token: TOKEN });
    slack = server;
    const threadWriter = new SlackWriter({
      api: chatApiOf(createSlackWebClient({ botToken: TOKEN, apiUrl: server.apiUrl }, { timeoutMs: 400 })),
      retryMs: 120_000,
      minIntervalMs: 20,
      initialBackoffMs: 50,
      maxBackoffMs: 100,
    });
    writer = threadWriter;

    // The plan message the bot posted when the run was requested, while Slack was still fine.
    const base: RunRecord = {
      runId: randomUUID(),
      cluster: 'CLUSTER-1',
      exec: true,
      options: { threads: 5, ignoreHosts: [], restorePlacement: false, step: false },
      state: 'approved',
      requestedBy: 'UREQ',
      channel: CHANNEL,
      createdAt: new Date().toISOString(),
      approvedBy: 'UAPP',
      approvedAt: new Date().toISOString(),
      hostsTotal: 2,
      hostsDone: 0,
    };
    const messageTs = await threadWriter.channel(CHANNEL).post(rootMessage(base)).ts;
    const run: RunRecord = { ...base, messageTs };
    await fixture.runStore.create(run);

    // From now until the lab shows the cluster Managed again (the run's very last change), every
    // Slack call hangs: each one that hangs arms the next.
    let rebootFinished = false;
    const unsubscribe = lab.log.subscribe((op) => {
      if (op.kind === 'cloudstack.managedstate' && op.detail?.to === 'Managed') rebootFinished = true;
    });
    const hangFrom = server.calls().length;
    server.fail('chat.postMessage', { hang: true });
    server.fail('chat.update', { hang: true });
    const hanging = server.waitFor((s) => {
      const last = s.calls().at(-1);
      if (!rebootFinished && last?.answer === 'hang') s.fail(last.method, { hang: true });
      return rebootFinished;
    }, 30_000);

    await startTestWorker(fixture, [lab], {
      reporterFor: createSlackRunReporter({ writer: threadWriter, worker: 'worker-a:1' }),
      workerId: 'worker-a:1',
    });
    await fixture.queue.enqueue(run.runId);
    await hanging;
    unsubscribe();
    // While the cluster was being rebooted, Slack answered nothing, and the writer kept trying.
    const duringRun = server.calls().slice(hangFrom);
    expect(duringRun.length).toBeGreaterThan(1);
    expect(duringRun.filter((c) => c.answer !== 'hang')).toEqual([]);

    const done = await waitForRunState(fixture, run.runId, ['done', 'failed', 'needs_attention', 'aborted']);
    expect(done.state).toBe('done');
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1 });

    // Slack is back (the armed hangs are used up): the thread catches up with the whole run.
    await server.waitFor(
      (s) => s.message(messageTs as string)?.text === 'Rolling reboot of CLUSTER-1: done',
      30_000,
    );
    await threadWriter.flush(10_000);
    const thread = server.messages({ threadTs: messageTs }).map((m) => m.text);
    expect(thread[0]).toBe('Run started');
    expect(thread.filter((t) => t.startsWith('Host '))).toEqual([
      'Host 1/2 host1: done',
      'Host 2/2 host2: done',
    ]);
    expect(thread).toContain('Preparing the cluster');
    expect(thread).toContain('Restoring the cluster');
    expect(thread.some((t) => t.startsWith('Rolling reboot done'))).toBe(true);
    expect(threadWriter.stats.dropped).toBe(0);
  }, 60_000);
});
