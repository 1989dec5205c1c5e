/**
 * Fault matrix: the worker SIGKILLed at each kind of step of one run (while host1's VMs migrate,
 * while host2 reboots, while the cluster is being restored), each time another worker resuming from
 * the Redis checkpoint. No host is rebooted twice, none skipped, no VM lost (I7), and the run ends
 * done with the cluster as it was (I6).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import type { Operation } from '../../lab/operation-log.js';
import { startTestLab } from '../support/lab-cli.js';
import {
  auditActions,
  createApprovedRun,
  labEngineEnv,
  type QueueFixture,
  startQueueFixture,
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
  id: string;
  child: ChildProcess;
  /** What the worker told its reporter, one JSON line each. */
  lines: Array<{ kind: string; event?: { type: string; host?: string; resumed?: boolean } }>;
  exited: Promise<NodeJS.Signals | null>;
}

/** test/support/worker-process.ts in its own process, once it says it is ready. */
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
  const worker: ChildWorker = {
    id,
    child,
    lines: [],
    exited: new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal))),
  };
  let stderr = '';
  let partial = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${id} not ready in 15 s: ${stderr}`)), 15_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      partial += chunk.toString();
      const complete = partial.split('\n');
      partial = complete.pop() ?? '';
      for (const text of complete.filter((line) => line.startsWith('{'))) {
        const line = JSON.parse(text) as ChildWorker['lines'][number];
        worker.lines.push(line);
        if (line.kind === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    void worker.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`worker ${id} exited before it was ready: ${stderr}`));
    });
  });
  return worker;
}

/** SIGKILLs `worker` the moment the lab records an operation matching `when`; resolves once it is gone. */
function killWhen(current: Lab, worker: ChildWorker, when: (op: Operation) => boolean): Promise<Operation> {
  return new Promise((resolve) => {
    const unsubscribe = current.log.subscribe((op) => {
      if (!when(op)) return;
      unsubscribe();
      worker.child.kill('SIGKILL');
      void worker.exited.then(() => {
        children.delete(worker.child);
        resolve(op);
      });
    });
  });
}

const eventsOf = (worker: ChildWorker, type: string) =>
  worker.lines.filter((line) => line.event?.type === type).map((line) => line.event);

describe('the worker killed at each kind of step', () => {
  it('migrations, reboot wait, restore: each time another worker resumes; every host rebooted once, done', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6, haEnabled: true, autoPoweron: true });
    const current = lab;
    const run = await createApprovedRun(fixture, 'CLUSTER-1');

    // One worker alive at a time, so the one killed is always the one running the cluster. Each is
    // armed as soon as it is ready: the step it is killed at cannot come before it has the run.
    // Killed while host1's VMs are migrating (a migration is in flight in the lab).
    const first = await spawnWorker(current, 'first:1');
    const duringMigrations = killWhen(current, first, (op) => op.kind === 'vm.migration_started');
    await fixture.queue.enqueue(run.runId);
    await duringMigrations;
    expect(eventsOf(first, 'host_done')).toEqual([]);

    // Killed while host2 is down, between host.reboot and its return.
    const second = await spawnWorker(current, 'second:2');
    await killWhen(current, second, (op) => op.kind === 'host.went_down' && op.host === 'host2');

    // Killed in the middle of putting the cluster back (HA is on again, the rest not yet).
    const third = await spawnWorker(current, 'third:3');
    await killWhen(current, third, (op) => op.kind === 'pool.ha_enabled');

    const fourth = await spawnWorker(current, 'fourth:4');
    const done = await waitForRunState(
      fixture,
      run.runId,
      ['done', 'failed', 'needs_attention', 'aborted'],
      40_000,
    );
    expect(done.state).toBe('done');
    expect(done.worker).toBe('fourth:4');
    expect(done.hostsDone).toBe(3);

    const report = current.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
    expect(current.log.ofKind('host.reboot_requested').map((op) => op.host)).toEqual([
      'host1',
      'host2',
      'host3',
    ]);

    // What each worker told the team: who resumed, and which host each of them finished.
    const workers = [first, second, third, fourth];
    expect(workers.map((w) => eventsOf(w, 'run_started').map((e) => e?.resumed))).toEqual([
      [false],
      [true],
      [true],
      [true],
    ]);
    const rebooting = workers.flatMap((w) => eventsOf(w, 'host_rebooting').map((e) => e?.host));
    expect(rebooting).toEqual(['host1', 'host2', 'host3']);
    expect(workers.flatMap((w) => eventsOf(w, 'host_done').map((e) => e?.host))).toEqual([
      'host1',
      'host2',
      'host3',
    ]);
    expect(eventsOf(fourth, 'finished')).toHaveLength(1);
    expect(fourth.lines.find((l) => l.kind === 'finished')).toMatchObject({ outcome: { status: 'done' } });

    const actions = await auditActions(fixture, run.runId);
    expect(actions.filter((a) => a === 'job_started')).toHaveLength(4);
    expect(actions.filter((a) => a === 'host_done')).toHaveLength(3);
    expect(actions.at(-1)).toBe('run_finished');
  }, 60_000);
});
