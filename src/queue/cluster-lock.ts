/**
 * One run per cluster across every worker and process (invariant I4), whatever BullMQ does: BullMQ
 * is at-least-once and may hand a job to a second worker while the first still runs it.
 *
 * A Redis key with an expiry, renewed while held, and a fencing token from a counter that only
 * grows: the lock's value is `${token}:${owner}`, and every fenced write compares it, so a worker
 * that paused past its expiry cannot act on the cluster once another worker took over.
 */
import type { Redis } from 'ioredis';
import { withTimeout } from '../engine/waits.js';

export interface HeldClusterLock {
  readonly cluster: string;
  /** The fencing token: strictly greater than every token handed out before for this cluster. */
  readonly token: number;
  readonly owner: string;
  /** The lock key and the value this holder wrote: what fenced writes compare. */
  readonly key: string;
  readonly value: string;
  /** True once a renewal or check found the lock gone or taken: never false again. */
  readonly lost: boolean;
  /** Extends the expiry if still held; false (and `lost`) otherwise. */
  renew(): Promise<boolean>;
  /** Asks Redis whether the lock still holds this value; false marks it `lost`. */
  isHeld(): Promise<boolean>;
  /** Stops renewing and deletes the lock if it still holds this value. */
  release(): Promise<void>;
  /** Calls `listener` once when the lock is found lost (at once if it already is). */
  onLost(listener: () => void): void;
}

export function clusterLockKey(prefix: string, cluster: string): string {
  return `${prefix}:lock:${cluster}`;
}

export function clusterFenceKey(prefix: string, cluster: string): string {
  return `${prefix}:fence:${cluster}`;
}

/** The token of the value stored in a lock key (`${token}:${owner}`). */
export function tokenOfLockValue(value: string): number {
  return Number(value.slice(0, value.indexOf(':')));
}

/** KEYS[1] lock, KEYS[2] fence; ARGV[1] owner, ARGV[2] ttl ms. The token is only spent on success. */
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token
`;

/** KEYS[1] lock; ARGV[1] expected value, ARGV[2] ttl ms. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

/** KEYS[1] lock; ARGV[1] expected value. */
const CHECK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
`;

/** KEYS[1] lock; ARGV[1] expected value. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Takes the cluster's lock for `owner`, or returns undefined when anyone holds it (the same owner
 * included: two jobs of one worker are still two runs). The lock is renewed every ttl/3 until
 * released; a renewal that fails marks it `lost`.
 */
export async function acquireClusterLock(
  redis: Redis,
  prefix: string,
  cluster: string,
  owner: string,
  ttlMs: number,
): Promise<HeldClusterLock | undefined> {
  const key = clusterLockKey(prefix, cluster);
  // A call that cannot finish within the ttl is no use: the lock would have expired meanwhile.
  const callTimeoutMs = Math.max(ttlMs, 1000);
  const token = (await withTimeout(
    redis.eval(ACQUIRE, 2, key, clusterFenceKey(prefix, cluster), owner, String(ttlMs)),
    callTimeoutMs,
    `taking the lock on ${cluster}`,
  )) as number | null;
  if (token === null) return undefined;
  return new RenewedLock(redis, cluster, Number(token), owner, key, ttlMs, callTimeoutMs);
}

class RenewedLock implements HeldClusterLock {
  readonly value: string;
  #lost = false;
  #released = false;
  readonly #lostListeners: Array<() => void> = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly redis: Redis,
    readonly cluster: string,
    readonly token: number,
    readonly owner: string,
    readonly key: string,
    readonly ttlMs: number,
    readonly callTimeoutMs: number,
  ) {
    this.value = `${token}:${owner}`;
    this.#schedule();
  }

  get lost(): boolean {
    return this.#lost;
  }

  async renew(): Promise<boolean> {
    if (this.#lost || this.#released) return false;
    try {
      const renewed = await withTimeout(
        this.redis.eval(RENEW, 1, this.key, this.value, String(this.ttlMs)),
        // Renewals start a third of the ttl after the last one: by two thirds more it has expired.
        Math.max(Math.floor((this.ttlMs * 2) / 3), 200),
        `renewing the lock on ${this.cluster}`,
      );
      if (renewed !== 1) this.#markLost();
    } catch {
      // Unknown whether it was renewed: assume the worst, another worker may take it at expiry.
      this.#markLost();
    }
    return !this.#lost;
  }

  async isHeld(): Promise<boolean> {
    if (this.#lost || this.#released) return false;
    try {
      const held = await withTimeout(
        this.redis.eval(CHECK, 1, this.key, this.value),
        this.callTimeoutMs,
        `checking the lock on ${this.cluster}`,
      );
      if (held !== 1) this.#markLost();
    } catch {
      this.#markLost();
    }
    return !this.#lost;
  }

  async release(): Promise<void> {
    this.#released = true;
    clearTimeout(this.#timer);
    // Best effort: a lock we cannot delete expires by itself within the ttl.
    await withTimeout(
      this.redis.eval(RELEASE, 1, this.key, this.value),
      this.callTimeoutMs,
      `releasing the lock on ${this.cluster}`,
    ).catch(() => undefined);
  }

  onLost(listener: () => void): void {
    if (this.#lost) listener();
    else this.#lostListeners.push(listener);
  }

  #markLost(): void {
    if (this.#lost) return;
    this.#lost = true;
    clearTimeout(this.#timer);
    for (const listener of this.#lostListeners.splice(0)) listener();
  }

  #schedule(): void {
    if (this.#lost || this.#released) return;
    this.#timer = setTimeout(
      () => {
        void this.renew().then(() => this.#schedule());
      },
      Math.max(Math.floor(this.ttlMs / 3), 50),
    );
    // The lock must never be what keeps a finished process alive.
    this.#timer.unref();
  }
}
