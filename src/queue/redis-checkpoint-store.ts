/**
 * Checkpoints in Redis, so any worker can resume a run another worker started (invariant I7).
 * Writes are fenced by the cluster lock: a worker that lost its lock (paused past the expiry while
 * another worker took over) cannot overwrite the new holder's checkpoint.
 */
import type { Redis } from 'ioredis';
import {
  type Checkpoint,
  CheckpointError,
  type CheckpointStore,
  checkpointSchema,
} from '../engine/checkpoint.js';
import { withTimeout } from '../engine/waits.js';
import { LockLostError } from '../errors.js';
import { clusterLockKey, type HeldClusterLock } from './cluster-lock.js';

/** Redis calls are bounded: a checkpoint that cannot be written in time stops the run safely. */
const CALL_TIMEOUT_MS = 10_000;

export function checkpointKey(prefix: string, cluster: string): string {
  return `${prefix}:checkpoint:${cluster}`;
}

/** KEYS[1] lock, KEYS[2] checkpoint; ARGV[1] lock value, ARGV[2] checkpoint JSON ('' = delete). */
const FENCED_WRITE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[2]) else redis.call('SET', KEYS[2], ARGV[2]) end
return 1
`;

/** KEYS[1] lock, KEYS[2] checkpoint: deletes only while nobody holds the cluster's lock. */
const CLEAR_IF_UNLOCKED = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
return 1
`;

async function loadCheckpoint(
  redis: Redis,
  prefix: string,
  cluster: string,
): Promise<Checkpoint | undefined> {
  const key = checkpointKey(prefix, cluster);
  const raw = await withTimeout(redis.get(key), CALL_TIMEOUT_MS, `reading the checkpoint of ${cluster}`);
  if (raw === null) return undefined;
  const parsed = checkpointSchema.safeParse(safeJson(raw));
  if (!parsed.success) {
    throw new CheckpointError(
      `The checkpoint of ${cluster} in Redis (${key}) is damaged ` +
        `(${parsed.error.issues[0]?.message ?? 'invalid'}); check the cluster by hand, then delete the key to start afresh`,
    );
  }
  return parsed.data;
}

/** The worker's store: reads freely, writes only while `lock` is still this worker's. */
export class RedisCheckpointStore implements CheckpointStore {
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
    readonly lock: HeldClusterLock,
    /** Told before a refused write throws, e.g. to stop the run at once rather than "restore". */
    readonly onLockLost?: () => void,
  ) {}

  load(cluster: string): Promise<Checkpoint | undefined> {
    return loadCheckpoint(this.redis, this.prefix, cluster);
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    await this.#fencedWrite(checkpoint.cluster.name, JSON.stringify(checkpoint));
  }

  async clear(cluster: string): Promise<void> {
    await this.#fencedWrite(cluster, '');
  }

  async #fencedWrite(cluster: string, json: string): Promise<void> {
    if (cluster !== this.lock.cluster) {
      throw new Error(`a checkpoint of ${cluster} cannot be written under the lock of ${this.lock.cluster}`);
    }
    const written = await withTimeout(
      this.redis.eval(
        FENCED_WRITE,
        2,
        clusterLockKey(this.prefix, cluster),
        checkpointKey(this.prefix, cluster),
        this.lock.value,
        json,
      ),
      CALL_TIMEOUT_MS,
      `writing the checkpoint of ${cluster}`,
    );
    if (written !== 1) {
      this.onLockLost?.();
      throw new LockLostError(cluster, this.lock.token);
    }
  }
}

/**
 * The bot's view: reads a cluster's checkpoint (status, the needs-attention message) and clears it
 * when an operator clicks Finish, but never while a worker holds the cluster's lock.
 */
export class RedisCheckpointReader {
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {}

  load(cluster: string): Promise<Checkpoint | undefined> {
    return loadCheckpoint(this.redis, this.prefix, cluster);
  }

  /** True when cleared (or there was none); false when a worker holds the cluster's lock. */
  async clear(cluster: string): Promise<boolean> {
    const cleared = await withTimeout(
      this.redis.eval(
        CLEAR_IF_UNLOCKED,
        2,
        clusterLockKey(this.prefix, cluster),
        checkpointKey(this.prefix, cluster),
      ),
      CALL_TIMEOUT_MS,
      `clearing the checkpoint of ${cluster}`,
    );
    return cleared === 1;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
