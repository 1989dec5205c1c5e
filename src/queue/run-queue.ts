/**
 * The producer side of the queue: "run this approved run now". Every enqueue gets a new job id, so
 * a Resume of a run whose earlier job is still retained is not dropped as a duplicate; a duplicate
 * job for a run is harmless anyway (the worker checks the run's state under the cluster lock).
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { withTimeout } from '../engine/waits.js';
import type { RunQueue } from './contracts.js';
import { RUN_QUEUE_NAME, type RunJobData, runJobId, runJobSchema } from './job-schema.js';

/** A worker's connection waits out a Redis restart; an enqueue still must not hang forever. */
const ENQUEUE_TIMEOUT_MS = 15_000;

export interface BullRunQueueOptions {
  /** Not closed by the queue: the caller owns it (a `client` connection in the bot fails fast). */
  connection: Redis;
  prefix: string;
  /** How long finished and failed jobs stay in Redis (the run record and audit log stay longer). */
  retentionMs: number;
}

export class BullRunQueue implements RunQueue {
  readonly #queue: Queue<RunJobData>;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #retentionSeconds: number;

  constructor(options: BullRunQueueOptions) {
    this.#redis = options.connection;
    this.#prefix = options.prefix;
    this.#retentionSeconds = Math.max(1, Math.round(options.retentionMs / 1000));
    this.#queue = new Queue<RunJobData>(RUN_QUEUE_NAME, {
      connection: options.connection,
      prefix: options.prefix,
    });
    // Without a listener an 'error' event would crash the process; callers see errors from enqueue.
    this.#queue.on('error', () => undefined);
  }

  async enqueue(runId: string): Promise<void> {
    const data = runJobSchema.parse({ runId });
    await withTimeout(this.#add(data), ENQUEUE_TIMEOUT_MS, `queueing run ${runId}`);
  }

  async #add(data: RunJobData): Promise<void> {
    const counter = `${this.#prefix}:enqueues:${data.runId}`;
    const count = await this.#redis.incr(counter);
    await this.#redis.expire(counter, this.#retentionSeconds);
    await this.#queue.add('run', data, {
      jobId: runJobId(data.runId, count),
      // A half-done reboot is never retried automatically: resuming is a worker's or a human's call.
      attempts: 1,
      removeOnComplete: { age: this.#retentionSeconds },
      removeOnFail: { age: this.#retentionSeconds },
    });
  }

  async close(): Promise<void> {
    await this.#queue.close();
  }
}
