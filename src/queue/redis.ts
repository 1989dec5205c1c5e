/**
 * Redis connections. A worker's connection waits out Redis restarts (BullMQ requires
 * `maxRetriesPerRequest: null`); a client connection (the Slack bot answering a click) fails fast
 * so a user gets an answer instead of a hang.
 */
import { Redis } from 'ioredis';

export type { Redis } from 'ioredis';

export function createRedis(url: string, purpose: 'worker' | 'client'): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: purpose === 'worker' ? null : 2,
    enableReadyCheck: true,
    connectTimeout: 10_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    lazyConnect: false,
  });
}
