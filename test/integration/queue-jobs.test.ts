/**
 * The producer side: what a queued job looks like in BullMQ (read back through BullMQ's own Queue),
 * and which job data the worker accepts.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUN_QUEUE_NAME, runJobSchema } from '../../src/queue/job-schema.js';
import { createRedis, type Redis } from '../../src/queue/redis.js';
import { BullRunQueue } from '../../src/queue/run-queue.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';

let server: TestRedis;
let redis: Redis;
let queue: BullRunQueue;
let inspector: Queue;

beforeAll(async () => {
  server = await startTestRedis();
  redis = createRedis(server.url, 'client');
  queue = new BullRunQueue({ connection: redis, prefix: server.prefix, retentionMs: 2 * 86_400_000 });
  inspector = new Queue(RUN_QUEUE_NAME, { connection: redis, prefix: server.prefix });
});

afterAll(async () => {
  await inspector?.close();
  await queue?.close();
  await redis?.quit();
  await server?.stop();
});

describe('BullRunQueue', () => {
  it('queues { runId } once per enqueue, with attempts 1 and retention by age, under the prefix', async () => {
    const runId = 'c0ffee00-1111-4222-8333-444455556666';
    await queue.enqueue(runId);
    // A Resume queues the same run again: a new job, not dropped as a duplicate of the first.
    await queue.enqueue(runId);

    const jobs = await inspector.getJobs(['wait']);
    expect(jobs.map((job) => job.id).sort()).toEqual([`${runId}-1`, `${runId}-2`]);
    for (const job of jobs) {
      expect(job.data).toEqual({ runId });
      expect(job.opts.attempts).toBe(1);
      expect(job.opts.removeOnComplete).toEqual({ age: 2 * 86_400 });
      expect(job.opts.removeOnFail).toEqual({ age: 2 * 86_400 });
    }
    const keys = await redis.keys(`${server.prefix}:${RUN_QUEUE_NAME}:*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(await redis.keys(`bull:*`)).toEqual([]);
  });

  it('refuses a run id BullMQ could not use as part of a job id, queueing nothing', async () => {
    const before = await inspector.count();
    await expect(queue.enqueue('run:with:colons')).rejects.toThrow(/runId/);
    await expect(queue.enqueue('')).rejects.toThrow(/runId/);
    expect(await inspector.count()).toBe(before);
  });
});

describe('job data schema', () => {
  it('accepts exactly { runId } and nothing else', () => {
    expect(runJobSchema.safeParse({ runId: 'abc-123' }).success).toBe(true);
    expect(runJobSchema.safeParse({ runId: 'abc', cluster: 'CLUSTER-1' }).success).toBe(false);
    expect(runJobSchema.safeParse({ runId: 42 }).success).toBe(false);
    expect(runJobSchema.safeParse({}).success).toBe(false);
    expect(runJobSchema.safeParse({ runId: 'a'.repeat(129) }).success).toBe(false);
  });
});
