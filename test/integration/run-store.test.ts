import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisAuditLog } from '../../src/audit/audit-log.js';
import type { RunRecord } from '../../src/queue/contracts.js';
import { createRedis, type Redis } from '../../src/queue/redis.js';
import { RedisRunStore } from '../../src/queue/run-store.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';

let server: TestRedis;
let redis: Redis;
let others: Redis[] = [];

beforeAll(async () => {
  server = await startTestRedis();
  redis = createRedis(server.url, 'client');
  others = Array.from({ length: 5 }, () => createRedis(server.url, 'client'));
});
afterAll(async () => {
  for (const client of [redis, ...others]) client.disconnect();
  await server.stop();
});

function newRun(runId: string, cluster = 'CLUSTER-1'): RunRecord {
  return {
    runId,
    cluster,
    exec: true,
    options: { threads: 5, ignoreHosts: [], restorePlacement: false, step: false },
    state: 'awaiting_approval',
    requestedBy: 'U0REQUEST',
    channel: 'C0OPS',
    createdAt: new Date().toISOString(),
    hostsTotal: 3,
    hostsDone: 0,
    findings: [],
  };
}

describe('RedisRunStore', () => {
  it('keeps a run exactly as written, empty lists included', async () => {
    const store = new RedisRunStore(redis, server.prefix);
    const run = newRun('run-roundtrip');
    await store.create(run);
    expect(await store.get('run-roundtrip')).toEqual(run);
    await expect(store.create(run)).rejects.toThrow(/already exists/);
  });

  it('lets exactly one of many concurrent approvals through, from several connections', async () => {
    const stores = others.map((client) => new RedisRunStore(client, server.prefix));
    await stores[0]?.create(newRun('run-race'));
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (stores[i % stores.length] as RedisRunStore).transition(
          'run-race',
          ['awaiting_approval'],
          'approved',
          {
            approvedBy: `U0APPROVER${i}`,
          },
        ),
      ),
    );
    const winners = results.filter((r) => r.ok);
    expect(winners).toHaveLength(1);
    const stored = await stores[0]?.get('run-race');
    expect(stored?.state).toBe('approved');
    expect(stored?.approvedBy).toBe(winners[0]?.record.approvedBy);
    const losers = results.filter((r) => !r.ok);
    expect(losers.every((r) => r.record?.state === 'approved')).toBe(true);
  });

  it('refuses a transition from the wrong state and an unknown run', async () => {
    const store = new RedisRunStore(redis, server.prefix);
    await store.create({ ...newRun('run-done'), state: 'done' });
    expect((await store.transition('run-done', ['awaiting_approval'], 'approved')).ok).toBe(false);
    expect(await store.transition('no-such-run', ['awaiting_approval'], 'approved')).toEqual({
      ok: false,
      record: undefined,
    });
    expect(await store.update('no-such-run', { hostsDone: 1 })).toBeUndefined();
  });

  it('updates fields without touching the state, and keeps abort and continue flags', async () => {
    const store = new RedisRunStore(redis, server.prefix);
    await store.create(newRun('run-flags'));
    const updated = await store.update('run-flags', { hostsDone: 2, messageTs: '1700000000.000100' });
    expect(updated).toMatchObject({
      state: 'awaiting_approval',
      hostsDone: 2,
      messageTs: '1700000000.000100',
    });
    expect(await store.isAbortRequested('run-flags')).toBe(false);
    await store.requestAbort('run-flags', 'U0ABORTER');
    expect(await store.isAbortRequested('run-flags')).toBe(true);
    expect((await store.get('run-flags'))?.abortRequestedBy).toBe('U0ABORTER');
    expect(await store.takeContinue('run-flags')).toBe(false);
    await store.grantContinue('run-flags', 'U0APPROVER');
    expect(await store.takeContinue('run-flags')).toBe(true);
    expect(await store.takeContinue('run-flags')).toBe(false);
  });

  it('lists runs newest first and finds the active run of a cluster', async () => {
    const store = new RedisRunStore(redis, server.prefix);
    await store.create({
      ...newRun('run-old', 'CLUSTER-9'),
      state: 'done',
      createdAt: '2026-01-01T00:00:00.000Z',
    });
    await store.create({
      ...newRun('run-new', 'CLUSTER-9'),
      state: 'running',
      createdAt: '2026-01-02T00:00:00.000Z',
    });
    const listed = await store.listRecent({ cluster: 'CLUSTER-9', limit: 10 });
    expect(listed.map((r) => r.runId)).toEqual(['run-new', 'run-old']);
    expect((await store.activeRun('CLUSTER-9'))?.runId).toBe('run-new');
    expect(await store.activeRun('CLUSTER-404')).toBeUndefined();
  });
});

describe('RedisRunStore busy index', () => {
  it('finds the run holding a cluster however many newer requests came after it', async () => {
    const store = new RedisRunStore(redis, `${server.prefix}busy`);
    const holder = {
      ...newRun('holder', 'CLUSTER-B'),
      state: 'running' as const,
      createdAt: '2026-01-01T00:00:00.000Z',
    };
    await store.create(holder);
    // 120 requests at once, all created before any is judged (as concurrent slash commands are).
    const later = Array.from({ length: 120 }, (_, i) => ({
      ...newRun(`later-${i}`, 'CLUSTER-B'),
      state: 'planning' as const,
      createdAt: new Date(Date.parse('2026-01-02T00:00:00.000Z') + i).toISOString(),
    }));
    await Promise.all(later.map((run) => store.create(run)));
    const busy = await store.busyRuns('CLUSTER-B');
    expect(busy[0]?.runId).toBe('holder');
    expect(busy).toHaveLength(121);
    // Each newer request sees an older busy run, so none of them goes on.
    const winners = later.filter(
      (run) => !busy.some((other) => other.runId !== run.runId && other.createdAt < run.createdAt),
    );
    expect(winners).toEqual([]);
    await Promise.all(later.map((run) => store.transition(run.runId, ['planning'], 'refused')));
    expect((await store.busyRuns('CLUSTER-B')).map((r) => r.runId)).toEqual(['holder']);
    expect((await store.activeRun('CLUSTER-B'))?.runId).toBe('holder');
    await store.transition('holder', ['running'], 'done');
    expect(await store.busyRuns('CLUSTER-B')).toEqual([]);
    expect(await store.activeRun('CLUSTER-B')).toBeUndefined();
  });
});

describe('RedisAuditLog', () => {
  it('appends in order and exports per run', async () => {
    const audit = new RedisAuditLog(redis, `${server.prefix}audit`);
    await audit.append({ runId: 'r1', actor: 'U1', action: 'request', detail: { cluster: 'CLUSTER-1' } });
    await audit.append({ runId: 'r2', actor: 'U2', action: 'request' });
    await audit.append({ runId: 'r1', actor: 'U3', action: 'approve' });
    expect((await audit.list({ runId: 'r1' })).map((e) => [e.actor, e.action])).toEqual([
      ['U1', 'request'],
      ['U3', 'approve'],
    ]);
    const all = await audit.list();
    expect(all).toHaveLength(3);
    expect(all[0]?.detail).toEqual({ cluster: 'CLUSTER-1' });
    expect(Date.parse(all[0]?.at ?? '')).toBeGreaterThan(0);
    expect((await audit.list({ limit: 1 })).map((e) => e.action)).toEqual(['approve']);
  });
});
