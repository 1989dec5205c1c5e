import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../src/engine/checkpoint.js';
import { CheckpointError } from '../../src/engine/checkpoint.js';
import { LockLostError } from '../../src/errors.js';
import {
  acquireClusterLock,
  clusterFenceKey,
  clusterLockKey,
  type HeldClusterLock,
  tokenOfLockValue,
} from '../../src/queue/cluster-lock.js';
import { createRedis, type Redis } from '../../src/queue/redis.js';
import {
  checkpointKey,
  RedisCheckpointReader,
  RedisCheckpointStore,
} from '../../src/queue/redis-checkpoint-store.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';

let server: TestRedis;
let redis: Redis;
const held: HeldClusterLock[] = [];

beforeAll(async () => {
  server = await startTestRedis();
  redis = createRedis(server.url, 'worker');
});

afterAll(async () => {
  for (const lock of held) await lock.release();
  await redis?.quit();
  await server?.stop();
});

let clusters = 0;
/** A cluster name of its own per test: tests share one Redis and prefix. */
function newCluster(): string {
  clusters += 1;
  return `CLUSTER-${clusters}`;
}

async function take(cluster: string, owner: string, ttlMs: number): Promise<HeldClusterLock | undefined> {
  const lock = await acquireClusterLock(redis, server.prefix, cluster, owner, ttlMs);
  if (lock) held.push(lock);
  return lock;
}

/** Resolves when the lock key is gone from Redis (expired), polling Redis itself. */
async function untilExpired(cluster: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while ((await redis.exists(clusterLockKey(server.prefix, cluster))) === 1) {
    if (Date.now() > deadline) throw new Error('lock did not expire');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function checkpointOf(cluster: string, runId: string): Checkpoint {
  return {
    version: 1,
    runId,
    cluster: { name: cluster, id: 'c0ffee' },
    startedAt: '2026-01-01T00:00:00.000Z',
    phase: 'rebooting',
    saved: {
      haEnabled: true,
      haHeartbeatSrUuids: ['sr-1'],
      haConfiguration: { timeout: '60' },
      autoPoweron: 'true',
      managedState: 'Managed',
      placement: { 'vm-1': 'host-1' },
    },
    changed: { unmanaged: true, haDisabled: true, autoPoweronDisabled: false },
    order: ['host-1', 'host-2'],
    hosts: {
      'host-1': { name: 'host1', status: 'done', seconds: 12 },
      'host-2': { name: 'host2', status: 'pending' },
    },
    migrations: 3,
    attention: [],
    abortRequested: false,
  };
}

describe('cluster lock', () => {
  it('is exclusive: a second owner gets nothing while the first holds it, and tokens only grow', async () => {
    const cluster = newCluster();
    const a = await take(cluster, 'worker-a', 5_000);
    expect(a).toBeDefined();
    expect(await take(cluster, 'worker-b', 5_000)).toBeUndefined();
    // The same owner name is still a second run: refused too.
    expect(await take(cluster, 'worker-a', 5_000)).toBeUndefined();
    expect(await redis.get(clusterLockKey(server.prefix, cluster))).toBe(`${a?.token}:worker-a`);
    expect(await a?.isHeld()).toBe(true);

    await a?.release();
    expect(await redis.exists(clusterLockKey(server.prefix, cluster))).toBe(0);
    const b = await take(cluster, 'worker-b', 5_000);
    expect(b?.token).toBeGreaterThan(a?.token ?? Number.POSITIVE_INFINITY);
    expect(tokenOfLockValue(b?.value ?? '')).toBe(b?.token);
    // Refused attempts spend no token.
    expect(Number(await redis.get(clusterFenceKey(server.prefix, cluster)))).toBe(b?.token);
    // Another cluster is another lock.
    expect(await take(newCluster(), 'worker-a', 5_000)).toBeDefined();
  });

  it('is kept alive by renewal well past its ttl while held', async () => {
    const cluster = newCluster();
    const lock = await take(cluster, 'worker-a', 300);
    // Three ttls: without renewal it would have expired twice over.
    await new Promise((resolve) => setTimeout(resolve, 900));
    expect(lock?.lost).toBe(false);
    expect(await lock?.isHeld()).toBe(true);
    expect(await take(cluster, 'worker-b', 300)).toBeUndefined();
    const pttl = await redis.pttl(clusterLockKey(server.prefix, cluster));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(300);
  });

  it('fences a holder whose lock expired and was taken: isHeld false, renew false, saves refused', async () => {
    const cluster = newCluster();
    const a = await take(cluster, 'worker-a', 400);
    if (!a) throw new Error('no lock');
    let told = 0;
    a.onLost(() => told++);
    const storeA = new RedisCheckpointStore(redis, server.prefix, a, () => told++);
    await storeA.save(checkpointOf(cluster, 'run-a'));

    // Simulate worker A stalling (no renewals, e.g. a long GC or event-loop pause): make the key
    // expire now, as it would without renewals, then B takes over.
    await redis.pexpire(clusterLockKey(server.prefix, cluster), 1);
    await untilExpired(cluster);
    const b = await take(cluster, 'worker-b', 5_000);
    if (!b) throw new Error('B could not take the expired lock');
    expect(b.token).toBeGreaterThan(a.token);

    expect(await a.isHeld()).toBe(false);
    expect(a.lost).toBe(true);
    expect(await a.renew()).toBe(false);
    await expect(storeA.save(checkpointOf(cluster, 'run-a-late'))).rejects.toBeInstanceOf(LockLostError);
    await expect(storeA.clear(cluster)).rejects.toBeInstanceOf(LockLostError);
    // onLost once (from isHeld), plus the store's callback once per refused write.
    expect(told).toBe(3);

    // B's lock and data are untouched by A: A's release does not delete B's lock.
    await a.release();
    expect(await b.isHeld()).toBe(true);
    const storeB = new RedisCheckpointStore(redis, server.prefix, b);
    expect((await storeB.load(cluster))?.runId).toBe('run-a');
    await storeB.save(checkpointOf(cluster, 'run-b'));
    expect((await storeB.load(cluster))?.runId).toBe('run-b');
  });

  it('marks itself lost when a renewal finds the lock taken by another owner', async () => {
    const cluster = newCluster();
    const a = await take(cluster, 'worker-a', 300);
    if (!a) throw new Error('no lock');
    const lost = new Promise<void>((resolve) => a.onLost(resolve));
    // Someone overwrote the key (as after an expiry and takeover): the next timer renewal sees it.
    await redis.set(clusterLockKey(server.prefix, cluster), '999999:intruder', 'PX', 5_000);
    await lost;
    expect(a.lost).toBe(true);
    expect(await redis.get(clusterLockKey(server.prefix, cluster))).toBe('999999:intruder');
  });
});

describe('Redis checkpoint store', () => {
  it('round-trips a checkpoint, validated on load, and clears it', async () => {
    const cluster = newCluster();
    const lock = await take(cluster, 'worker-a', 5_000);
    if (!lock) throw new Error('no lock');
    const store = new RedisCheckpointStore(redis, server.prefix, lock);
    expect(await store.load(cluster)).toBeUndefined();
    const checkpoint = checkpointOf(cluster, 'run-1');
    await store.save(checkpoint);
    expect(await store.load(cluster)).toEqual(checkpoint);
    expect(JSON.parse((await redis.get(checkpointKey(server.prefix, cluster))) ?? '{}').runId).toBe('run-1');
    await store.clear(cluster);
    expect(await store.load(cluster)).toBeUndefined();
    expect(await redis.exists(checkpointKey(server.prefix, cluster))).toBe(0);
    // A store fenced by one cluster's lock cannot write another cluster's checkpoint.
    await expect(store.save(checkpointOf(newCluster(), 'run-x'))).rejects.toThrow(/cannot be written/);
  });

  it('refuses a damaged checkpoint with a CheckpointError naming the key', async () => {
    const cluster = newCluster();
    await redis.set(checkpointKey(server.prefix, cluster), JSON.stringify({ version: 1, runId: 'half' }));
    const reader = new RedisCheckpointReader(redis, server.prefix);
    const failure = reader.load(cluster);
    await expect(failure).rejects.toBeInstanceOf(CheckpointError);
    await expect(failure).rejects.toThrow(checkpointKey(server.prefix, cluster));
    await redis.set(checkpointKey(server.prefix, cluster), 'not json {');
    await expect(reader.load(cluster)).rejects.toBeInstanceOf(CheckpointError);
  });

  it("the bot's reader clears a checkpoint only while no worker holds the cluster's lock", async () => {
    const cluster = newCluster();
    const lock = await take(cluster, 'worker-a', 5_000);
    if (!lock) throw new Error('no lock');
    await new RedisCheckpointStore(redis, server.prefix, lock).save(checkpointOf(cluster, 'run-1'));
    const reader = new RedisCheckpointReader(redis, server.prefix);
    expect((await reader.load(cluster))?.runId).toBe('run-1');
    expect(await reader.clear(cluster)).toBe(false);
    expect((await reader.load(cluster))?.runId).toBe('run-1');
    await lock.release();
    expect(await reader.clear(cluster)).toBe(true);
    expect(await reader.load(cluster)).toBeUndefined();
  });
});
