/**
 * The queue worker against a lab cluster over real sockets and a real Redis: a queued run goes to
 * `done`, duplicates of a job make one run, abort and step mode are heard between hosts. Runs are
 * judged by the lab's operation log, not by what the worker says.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { clusterLockKey } from '../../src/queue/cluster-lock.js';
import { checkpointKey } from '../../src/queue/redis-checkpoint-store.js';
import { startTestLab } from '../support/lab-cli.js';
import { nextOperation, waitForOperation } from '../support/lab-waits.js';
import {
  auditActions,
  createApprovedRun,
  type QueueFixture,
  RecordingReporter,
  startQueueFixture,
  startTestWorker,
  waitForRunState,
} from '../support/queue-fixtures.js';

let fixture: QueueFixture;
let lab: Lab | undefined;

beforeEach(async () => {
  fixture = await startQueueFixture();
});

afterEach(async () => {
  await fixture.stop();
  await lab?.stop();
  lab = undefined;
});

describe('queue worker', () => {
  it('runs a queued run to done: reporter told, record and audit updated, invariants held', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6, haEnabled: true, autoPoweron: true });
    const reporter = new RecordingReporter();
    await startTestWorker(fixture, [lab], { reporter, workerId: 'test-host:4242' });
    const run = await createApprovedRun(fixture, 'CLUSTER-1');
    await fixture.queue.enqueue(run.runId);

    const done = await waitForRunState(fixture, run.runId, ['done', 'failed', 'needs_attention', 'aborted']);
    expect(done.state).toBe('done');
    expect(done).toMatchObject({ hostsDone: 3, hostsTotal: 3, worker: 'test-host:4242' });
    expect(done.finishedAt).toBeDefined();

    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });

    expect(reporter.starts).toEqual([false]);
    await expect.poll(() => reporter.outcomes).toEqual([{ status: 'done', attention: [] }]);
    expect(reporter.ofType('host_done').map((e) => e.host)).toEqual(['host1', 'host2', 'host3']);
    expect(reporter.ofType('finished')).toHaveLength(1);

    await expect
      .poll(() => auditActions(fixture, run.runId))
      .toEqual(['job_started', 'host_done', 'host_done', 'host_done', 'run_finished']);
    const entries = await fixture.audit.list({ runId: run.runId });
    expect(entries.every((e) => e.actor === 'worker:test-host:4242')).toBe(true);
    // The lock is released and the engine cleared the checkpoint.
    expect(await fixture.redis.exists(clusterLockKey(fixture.server.prefix, 'CLUSTER-1'))).toBe(0);
    expect(await fixture.redis.exists(checkpointKey(fixture.server.prefix, 'CLUSTER-1'))).toBe(0);
  });

  it('two workers, the same run queued twice: one run, every host rebooted once, no I2 violation', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6 });
    const reporterA = new RecordingReporter();
    const reporterB = new RecordingReporter();
    await startTestWorker(fixture, [lab], { reporter: reporterA, workerId: 'worker-a' });
    await startTestWorker(fixture, [lab], { reporter: reporterB, workerId: 'worker-b' });
    const run = await createApprovedRun(fixture, 'CLUSTER-1');
    // Two jobs for one run (a double click that got past the bot, or BullMQ delivering twice).
    await fixture.queue.enqueue(run.runId);
    await fixture.queue.enqueue(run.runId);

    const done = await waitForRunState(fixture, run.runId, ['done', 'failed', 'needs_attention', 'aborted']);
    expect(done.state).toBe('done');
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
    // Exactly one worker ran the engine.
    expect(reporterA.starts.length + reporterB.starts.length).toBe(1);

    // The other job ends without touching anything: it waited for the lock and gave up, or found
    // the run already done once it had the lock.
    const deadline = Date.now() + 10_000;
    let actions = await auditActions(fixture, run.runId);
    while (!actions.some((a) => a === 'lock_busy' || a === 'job_skipped') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      actions = await auditActions(fixture, run.runId);
    }
    expect(actions.filter((a) => a === 'job_started')).toHaveLength(1);
    expect(actions.filter((a) => a === 'lock_busy' || a === 'job_skipped')).toHaveLength(1);
  });

  it('a second approved run on a busy cluster waits, then gives up and is left as it is', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6 });
    // host2 takes 4 s more to boot: the first run holds the lock well past the second's 2 x ttl wait.
    lab.faults.slowReboot('host2', 4_000);
    await startTestWorker(fixture, [lab], { workerId: 'worker-a' });
    await startTestWorker(fixture, [lab], { workerId: 'worker-b' });
    const first = await createApprovedRun(fixture, 'CLUSTER-1');
    await fixture.queue.enqueue(first.runId);
    await waitForOperation(lab.log, (op) => op.kind === 'host.disabled', 'the first run to start');
    const second = await createApprovedRun(fixture, 'CLUSTER-1');
    await fixture.queue.enqueue(second.runId);

    const deadline = Date.now() + 10_000;
    while (!(await auditActions(fixture, second.runId)).includes('lock_busy') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await auditActions(fixture, second.runId)).toEqual(['lock_busy']);
    const [busy] = await fixture.audit.list({ runId: second.runId });
    expect(String(busy?.detail?.holder)).toMatch(/^\d+:worker-a\//);
    // It gave up while the first run was still going, and left its own run untouched.
    expect((await fixture.runStore.get(first.runId))?.state).toBe('running');
    expect((await fixture.runStore.get(second.runId))?.state).toBe('approved');

    await waitForRunState(fixture, first.runId, ['done'], 30_000);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
    expect((await fixture.runStore.get(second.runId))?.state).toBe('approved');
  });

  it('abort flag: the run stops at the next safe point, state aborted, cluster restored', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6, haEnabled: true, autoPoweron: true });
    const reporter = new RecordingReporter();
    await startTestWorker(fixture, [lab], { reporter });
    const run = await createApprovedRun(fixture, 'CLUSTER-1');
    await fixture.queue.enqueue(run.runId);
    await waitForOperation(
      lab.log,
      (op) => op.kind === 'host.came_up' && op.host === 'host1',
      'host1 back',
      15_000,
    );
    await fixture.runStore.requestAbort(run.runId, 'U0ABORTER');

    const ended = await waitForRunState(fixture, run.runId, ['done', 'failed', 'needs_attention', 'aborted']);
    expect(ended.state).toBe('aborted');
    // The record changes before the reporter hears the outcome: wait for it rather than race it.
    await expect.poll(() => reporter.outcomes).toEqual([{ status: 'aborted' }]);
    const report = lab.checkInvariants({ expectRestored: true });
    expect(report.violations).toEqual([]);
    // host1 was done before the abort was heard; host3 was never touched.
    expect(report.reboots.host1).toBe(1);
    expect(report.reboots.host3).toBeUndefined();
    await expect
      .poll(async () => (await auditActions(fixture, run.runId)).slice(-2))
      .toEqual(['aborted', 'run_finished']);
  });

  it('step mode pauses before each host after the first until Continue', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4 });
    const reporter = new RecordingReporter();
    await startTestWorker(fixture, [lab], { reporter });
    const run = await createApprovedRun(fixture, 'CLUSTER-1', { step: true });
    await fixture.queue.enqueue(run.runId);

    await reporter.waitFor((e) => e.type === 'paused', 'the run to pause before host2');
    const paused = await waitForRunState(fixture, run.runId, ['paused'], 5_000);
    expect(paused.hostsDone).toBe(1);
    // Paused means paused: host2 is not touched while nobody clicks Continue. Give the worker
    // several of its polls (100 ms) to prove it stays put.
    const host2Disabled = nextOperation(lab.log, 'host.disabled', 'host2', 1_000).then(
      () => true,
      () => false,
    );
    expect(await host2Disabled).toBe(false);
    expect((await fixture.runStore.get(run.runId))?.state).toBe('paused');

    await fixture.runStore.grantContinue(run.runId, 'U0APPROVER');
    const done = await waitForRunState(fixture, run.runId, ['done', 'failed', 'needs_attention', 'aborted']);
    expect(done.state).toBe('done');
    expect(reporter.ofType('continued').map((e) => e.nextHost)).toEqual(['host2']);
    expect(lab.checkInvariants().violations).toEqual([]);
    expect(await auditActions(fixture, run.runId)).toContain('continue_taken');
  });
  it('an unknown hook fails the run before anything on the cluster changes', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4 });
    const reporter = new RecordingReporter();
    await startTestWorker(fixture, [lab], { reporter });
    const run = await createApprovedRun(fixture, 'CLUSTER-1', { preEmptyHook: 'drain-everything' });
    await fixture.queue.enqueue(run.runId);
    const ended = await waitForRunState(fixture, run.runId, ['done', 'failed', 'needs_attention', 'aborted']);
    expect(ended.state).toBe('failed');
    expect(ended.result).toMatch(/--pre-empty-hook: no hook named "drain-everything"/);
    expect(lab.log.ofKind('host.disabled')).toEqual([]);
    expect(lab.log.ofKind('cloudstack.call').filter((op) => op.detail?.command === 'updateCluster')).toEqual(
      [],
    );
    expect(await auditActions(fixture, run.runId)).toEqual(['job_started', 'run_finished']);
  });

  it('a worker whose lock is taken mid-run stops at once and restores nothing over the new holder', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6, haEnabled: true, autoPoweron: true });
    await startTestWorker(fixture, [lab], { workerId: 'stale' });
    const run = await createApprovedRun(fixture, 'CLUSTER-1');
    await fixture.queue.enqueue(run.runId);
    await waitForOperation(
      lab.log,
      (op) => op.kind === 'host.disabled' && op.host === 'host1',
      'host1 disabled',
    );
    // Another worker took the cluster (as after this one stalled past its lock's expiry).
    await fixture.redis.set(clusterLockKey(fixture.server.prefix, 'CLUSTER-1'), '999:usurper', 'PX', 30_000);
    const stolenAt = lab.log.entries().length;

    const deadline = Date.now() + 15_000;
    while (!(await auditActions(fixture, run.runId)).includes('lock_lost') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await auditActions(fixture, run.runId)).toContain('lock_lost');
    const after = lab.log.entries().slice(stolenAt);
    // No reboot, no next host, and no "restore" (host re-enabled, HA, auto_poweron, managed state)
    // behind the new holder's back.
    expect(
      after.filter((op) => ['host.disabled', 'host.enabled', 'host.reboot_requested'].includes(op.kind)),
    ).toEqual([]);
    expect(after.filter((op) => op.kind === 'pool.ha_enabled' || op.kind === 'pool.other_config')).toEqual(
      [],
    );
    expect(
      after.filter((op) => op.kind === 'cloudstack.call' && op.detail?.command === 'updateCluster'),
    ).toEqual([]);
    // The record is the new holder's business now.
    expect((await fixture.runStore.get(run.runId))?.state).toBe('running');
    expect(await fixture.redis.get(clusterLockKey(fixture.server.prefix, 'CLUSTER-1'))).toBe('999:usurper');
  });
});
