/**
 * A run outlives its worker (I7): a worker SIGKILLed mid-run leaves a stalled job that another
 * worker picks up and resumes from the Redis checkpoint; a worker closed gracefully (SIGTERM)
 * suspends its run at the next host and another worker finishes it. No host is rebooted twice.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { startTestLab } from '../support/lab-cli.js';
import { waitForOperation } from '../support/lab-waits.js';
import {
  auditActions,
  createApprovedRun,
  labEngineEnv,
  type QueueFixture,
  RecordingReporter,
  startQueueFixture,
  startTestWorker,
  TEST_LOCK_TTL_MS,
  TEST_STALLED_INTERVAL_MS,
  waitForRunState,
} from '../support/queue-fixtures.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

let fixture: QueueFixture;
let lab: Lab | undefined;
const children = new Set<ChildProcess>();

beforeEach(async () => {
  fixture = await startQueueFixture();
});

afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  await fixture.stop();
  await lab?.stop();
  lab = undefined;
});

interface ChildWorker {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  exited: Promise<NodeJS.Signals | null>;
}

/** Starts test/support/worker-process.ts and resolves once it says it is ready. */
async function spawnWorker(current: Lab, id: string): Promise<ChildWorker> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/worker-process.ts'], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '',
      WORKER_REDIS_URL: fixture.server.url,
      WORKER_PREFIX: fixture.server.prefix,
      WORKER_ID: id,
      WORKER_LOCK_TTL_MS: String(TEST_LOCK_TTL_MS),
      WORKER_STALLED_INTERVAL_MS: String(TEST_STALLED_INTERVAL_MS),
      WORKER_ENGINE_ENV: JSON.stringify(labEngineEnv(current)),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  let partial = '';
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_code, signal) => resolve(signal)),
  );
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker process not ready in 15 s: ${stderr}`)), 15_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      partial += chunk.toString();
      const complete = partial.split('\n');
      partial = complete.pop() ?? '';
      for (const text of complete) {
        if (!text.startsWith('{')) continue;
        const parsed = JSON.parse(text) as Record<string, unknown>;
        lines.push(parsed);
        if (parsed.kind === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`worker process exited before it was ready: ${stderr}`));
    });
  });
  await ready;
  return { child, lines, exited };
}

function hostsDoneIn(lines: Array<Record<string, unknown>>): string[] {
  return lines
    .map((l) => l.event as { type?: string; host?: string } | undefined)
    .filter((e) => e?.type === 'host_done')
    .map((e) => e?.host ?? '?');
}

describe('a run outlives its worker', () => {
  it('worker SIGKILLed after host2 came back: another worker resumes from the checkpoint, done, no host twice', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6, haEnabled: true, autoPoweron: true });
    const doomed = await spawnWorker(lab, 'doomed:1');
    const run = await createApprovedRun(fixture, 'CLUSTER-1');
    const killed = new Promise<void>((resolve) => {
      const unsubscribe = lab?.log.subscribe((op) => {
        if (op.kind === 'host.came_up' && op.host === 'host2') {
          doomed.child.kill('SIGKILL');
          unsubscribe?.();
          resolve();
        }
      });
    });
    await fixture.queue.enqueue(run.runId);
    await killed;
    expect(await doomed.exited).toBe('SIGKILL');
    children.delete(doomed.child);
    // It died mid-run: the record still says running on the dead worker.
    expect(await fixture.runStore.get(run.runId)).toMatchObject({ state: 'running', worker: 'doomed:1' });

    const reporter = new RecordingReporter();
    await startTestWorker(fixture, [lab], { reporter, workerId: 'rescuer:2' });
    const done = await waitForRunState(
      fixture,
      run.runId,
      ['done', 'failed', 'needs_attention', 'aborted'],
      45_000,
    );
    expect(done.state).toBe('done');
    expect(done.worker).toBe('rescuer:2');
    expect(done.hostsDone).toBe(3);

    expect(reporter.starts).toEqual([true]);
    expect(reporter.ofType('run_started')[0]?.resumed).toBe(true);
    expect(hostsDoneIn(doomed.lines)).toEqual(['host1']);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
    const actions = await auditActions(fixture, run.runId);
    expect(actions.filter((a) => a === 'job_started')).toHaveLength(2);
    expect(actions.at(-1)).toBe('run_finished');
  }, 60_000);

  it('close() during a run suspends it at the next host; a second worker finishes it', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6, haEnabled: true, autoPoweron: true });
    const first = new RecordingReporter();
    const leaving = await startTestWorker(fixture, [lab], { reporter: first, workerId: 'leaving:1' });
    const run = await createApprovedRun(fixture, 'CLUSTER-1');
    await fixture.queue.enqueue(run.runId);

    // SIGTERM while host2 is being worked on: host2 is finished, host3 is left for another worker.
    await waitForOperation(
      lab.log,
      (op) => op.kind === 'host.disabled' && op.host === 'host2',
      'host2 started',
      15_000,
    );
    await leaving.close();

    expect(first.ofType('host_done').map((e) => e.host)).toEqual(['host1', 'host2']);
    expect(first.ofType('suspended').map((e) => e.nextHost)).toEqual(['host3']);
    expect(first.outcomes).toEqual([{ status: 'suspended', nextHost: 'host3' }]);
    const suspended = await fixture.runStore.get(run.runId);
    expect(suspended?.state).toBe('approved');
    expect(suspended?.hostsDone).toBe(2);
    expect(lab.log.ofKind('host.disabled').map((op) => op.host)).toEqual(['host1', 'host2']);

    const second = new RecordingReporter();
    await startTestWorker(fixture, [lab], { reporter: second, workerId: 'arriving:2' });
    const done = await waitForRunState(fixture, run.runId, ['done', 'failed', 'needs_attention', 'aborted']);
    expect(done.state).toBe('done');
    expect(second.starts).toEqual([true]);
    expect(second.ofType('host_done').map((e) => e.host)).toEqual(['host3']);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
    expect(await auditActions(fixture, run.runId)).toContain('suspended');
  }, 45_000);
  it('close() while a step-mode run is paused: nothing more is touched, another worker resumes it', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4 });
    const first = new RecordingReporter();
    const leaving = await startTestWorker(fixture, [lab], { reporter: first, workerId: 'leaving:1' });
    const run = await createApprovedRun(fixture, 'CLUSTER-1', { step: true });
    await fixture.queue.enqueue(run.runId);
    await first.waitFor((e) => e.type === 'paused', 'the pause before host2');
    await waitForRunState(fixture, run.runId, ['paused'], 5_000);

    await leaving.close();
    const left = await fixture.runStore.get(run.runId);
    expect(left?.state).toBe('approved');
    expect(left?.hostsDone).toBe(1);
    expect(lab.log.ofKind('host.disabled').map((op) => op.host)).toEqual(['host1']);
    // The engine checks for shutdown again after a pause, so the run is suspended cleanly, not stopped.
    expect(first.outcomes.map((o) => o.status)).toEqual(['suspended']);

    const second = new RecordingReporter();
    await startTestWorker(fixture, [lab], { reporter: second, workerId: 'arriving:2' });
    // Resumed in step mode: it pauses again before host2 and waits for a Continue click.
    await waitForRunState(fixture, run.runId, ['paused'], 15_000);
    expect(second.starts).toEqual([true]);
    await fixture.runStore.grantContinue(run.runId, 'U0APPROVER');
    const done = await waitForRunState(fixture, run.runId, ['done', 'failed', 'needs_attention', 'aborted']);
    expect(done.state).toBe('done');
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1 });
  });
});
