/**
 * Fault matrix: Redis restarts in the middle of a run. With its data kept (AOF, as production Redis
 * for BullMQ must run) the worker reconnects and the run goes on to done. Restarted empty (no
 * persistence: the lock, the checkpoint and the run record are gone), the worker touches nothing
 * more and tells the team exactly what it left changed.
 */

import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { RedisAuditLog } from '../../src/audit/audit-log.js';
import { createRedis } from '../../src/queue/redis.js';
import { BullRunQueue } from '../../src/queue/run-queue.js';
import { RedisRunStore } from '../../src/queue/run-store.js';
import { unreportedChanges } from '../support/fault-checks.js';
import { startTestLab } from '../support/lab-cli.js';
import { until } from '../support/lab-waits.js';
import {
  auditActions,
  createApprovedRun,
  type QueueFixture,
  RecordingReporter,
  startTestWorker,
  waitForRunState,
} from '../support/queue-fixtures.js';
import { startPrivateRedis, type TestRedis } from '../support/redis-server.js';

/** Longer than a restart takes, so the worker's lock outlives the outage it rides out. */
const LOCK_TTL_MS = 4_000;

let fixture: QueueFixture | undefined;
let lab: Lab | undefined;

afterEach(async () => {
  await fixture?.stop();
  fixture = undefined;
  await lab?.stop();
  lab = undefined;
});

function startRedis(persistent: boolean): Promise<TestRedis> {
  return startPrivateRedis({ persistent });
}

/** The queue fixture of test/support/queue-fixtures.ts, over this file's own Redis. */
function fixtureOn(server: TestRedis): QueueFixture {
  const redis = createRedis(server.url, 'worker');
  const built: QueueFixture = {
    server,
    redis,
    runStore: new RedisRunStore(redis, server.prefix),
    audit: new RedisAuditLog(redis, server.prefix),
    queue: new BullRunQueue({ connection: redis, prefix: server.prefix, retentionMs: 3_600_000 }),
    workers: [],
    stop: async () => {
      await Promise.all(built.workers.map((worker) => worker.close()));
      await built.queue.close();
      await redis.quit().catch(() => redis.disconnect());
      await server.stop();
    },
  };
  return built;
}

/** Restarts Redis the moment the lab records an operation of `kind` on `host`; resolves once it is back. */
function restartRedisOn(current: Lab, server: TestRedis, kind: string, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const unsubscribe = current.log.subscribe((op) => {
      if (op.kind !== kind || op.host !== host) return;
      unsubscribe();
      server.restart().then(resolve, reject);
    });
  });
}

describe('Redis restarts mid-run', () => {
  it('with its data kept: the worker reconnects after each restart and the run ends done', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6, haEnabled: true, autoPoweron: true });
    fixture = fixtureOn(await startRedis(true));
    const reporter = new RecordingReporter();
    await startTestWorker(fixture, [lab], {
      reporter,
      workerId: 'steady:1',
      lockTtlMs: LOCK_TTL_MS,
      stalledIntervalMs: LOCK_TTL_MS,
    });
    const run = await createApprovedRun(fixture, 'CLUSTER-1');
    // Once while host2's VMs migrate, once while host3 reboots.
    const restarts = Promise.all([
      restartRedisOn(lab, fixture.server, 'host.disabled', 'host2'),
      restartRedisOn(lab, fixture.server, 'host.went_down', 'host3'),
    ]);
    await fixture.queue.enqueue(run.runId);
    await restarts;

    const done = await waitForRunState(fixture, run.runId, ['done', 'failed', 'needs_attention', 'aborted']);
    expect(done.state).toBe('done');
    expect(done.hostsDone).toBe(3);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });

    // The team saw one uninterrupted run: no halt, no resume, every host, the summary.
    expect(reporter.starts).toEqual([false]);
    expect(reporter.ofType('needs_attention')).toEqual([]);
    expect(reporter.ofType('host_done').map((e) => e.host)).toEqual(['host1', 'host2', 'host3']);
    await until(() => reporter.outcomes.length > 0, 'the reporter to be told the outcome');
    expect(reporter.outcomes).toEqual([{ status: 'done', attention: [] }]);
    // The audit record written before the restarts survived them.
    const actions = await auditActions(fixture, run.runId);
    expect(actions.filter((a) => a === 'host_done')).toHaveLength(3);
    expect(actions[0]).toBe('job_started');
    expect(actions.at(-1)).toBe('run_finished');
  }, 45_000);

  it('restarted empty: the worker stops at its next fenced write and says what it left changed', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6, haEnabled: true, autoPoweron: true });
    const current = fixtureOn(await startRedis(false));
    fixture = current;
    const reporter = new RecordingReporter();
    await startTestWorker(fixture, [lab], {
      reporter,
      workerId: 'amnesiac:1',
      lockTtlMs: LOCK_TTL_MS,
      stalledIntervalMs: LOCK_TTL_MS,
    });
    const run = await createApprovedRun(fixture, 'CLUSTER-1');
    const restarted = restartRedisOn(lab, fixture.server, 'host.went_down', 'host2');
    await fixture.queue.enqueue(run.runId);
    await restarted;

    const halted = await reporter.waitFor((e) => e.type === 'needs_attention', 'the worker to halt');
    const haltSeq = lab.log.entries().length;
    if (halted.type !== 'needs_attention') throw new Error(`expected needs_attention, got ${halted.type}`);
    expect(halted.reason).toMatch(
      /^(stopped at once: )?The lock on cluster CLUSTER-1 \(fencing token \d+\) is no longer held by this worker$/,
    );
    expect(unreportedChanges(lab, halted.leftChanged)).toEqual([]);
    // Halted at the renewal during host2's reboot or at the checkpoint after it, whichever came first.
    expect(halted.leftChanged).toContain('CloudStack cluster CLUSTER-1 is Unmanaged (was Managed)');
    expect(halted.leftChanged.some((line) => /^already rebooted: host1(, host2)?$/.test(line))).toBe(true);
    expect(lab.checkInvariants({ expectRestored: false }).violations).toEqual([]);
    // The worker's last act for this run is its audit entry; by then nothing more was done to the cluster.
    await until(
      async () => (await auditActions(current, run.runId)).includes('lock_lost'),
      'the lock_lost audit',
    );
    const touchedAfter = lab.log
      .entries()
      .filter(
        (op) =>
          op.seq > haltSeq &&
          /^(host\.(disabled|enabled|reboot_requested)|vm\.migration_started|pool\.)/.test(op.kind),
      );
    expect(touchedAfter).toEqual([]);
    expect(lab.log.ofKind('host.reboot_requested').map((op) => op.host)).toEqual(['host1', 'host2']);
  }, 45_000);
});
