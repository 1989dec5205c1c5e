/**
 * `/readyz`: is this process able to do its job now? Redis reachable, Slack connected (the bot's
 * receiver and the Web API), the queue worker running: each check has a deadline, and the answer
 * names every check so an operator sees which one failed.
 */
import type { Redis } from 'ioredis';
import { withTimeout } from '../engine/waits.js';
import { describeError } from '../errors.js';

export interface CheckResult {
  ok: boolean;
  detail: string;
}

export interface ReadinessCheck {
  readonly name: string;
  check(): Promise<CheckResult> | CheckResult;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

const CHECK_TIMEOUT_MS = 2_000;

export async function checkReadiness(
  checks: readonly ReadinessCheck[],
  timeoutMs = CHECK_TIMEOUT_MS,
): Promise<ReadinessReport> {
  const results = await Promise.all(
    checks.map(async (c): Promise<[string, CheckResult]> => {
      try {
        return [c.name, await withTimeout(Promise.resolve(c.check()), timeoutMs, `the ${c.name} check`)];
      } catch (error) {
        return [c.name, { ok: false, detail: describeError(error) }];
      }
    }),
  );
  return { ready: results.every(([, r]) => r.ok), checks: Object.fromEntries(results) };
}

export function redisCheck(redis: Redis): ReadinessCheck {
  return {
    name: 'redis',
    async check() {
      // A connection that is reconnecting would only queue the PING: say so at once.
      if (redis.status !== 'ready') return { ok: false, detail: `connection ${redis.status}` };
      const answer = await redis.ping();
      return answer === 'PONG' ? { ok: true, detail: 'PONG' } : { ok: false, detail: String(answer) };
    },
  };
}

export function slackCheck(sources: {
  /** The bot's receiver: HTTP server listening, or Socket Mode's websocket open. Absent in a worker. */
  receiver?: () => CheckResult;
  webApi: () => CheckResult;
}): ReadinessCheck {
  return {
    name: 'slack',
    check() {
      const receiver = sources.receiver?.();
      const webApi = sources.webApi();
      const parts = [...(receiver ? [`receiver: ${receiver.detail}`] : []), `web API: ${webApi.detail}`];
      return { ok: (receiver?.ok ?? true) && webApi.ok, detail: parts.join('; ') };
    },
  };
}

export function workerCheck(worker: () => { isRunning(): boolean } | undefined): ReadinessCheck {
  return {
    name: 'worker',
    check() {
      const current = worker();
      if (!current) return { ok: false, detail: 'not started' };
      return current.isRunning() ? { ok: true, detail: 'running' } : { ok: false, detail: 'not running' };
    },
  };
}
