/**
 * Bounded waiting. Every wait in the engine goes through `pollUntil`, which gives up with a
 * `TimeoutError` naming what it waited for, and stops early when the run is cancelled.
 */
import { TimeoutError } from '../errors.js';

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

export interface PollOptions {
  what: string;
  timeoutMs: number;
  intervalMs: number;
  signal?: AbortSignal;
}

/**
 * Calls `check` until it returns a value other than `undefined`, at most every `intervalMs`.
 * Errors thrown by `check` count as "not yet" unless `isFatal` says otherwise; the last one is
 * kept as the cause of the timeout.
 */
export async function pollUntil<T>(
  check: () => Promise<T | undefined>,
  options: PollOptions & { isFatal?: (error: unknown) => boolean },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    const startedAt = Date.now();
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      if (options.isFatal?.(error)) throw error;
      lastError = error;
    }
    if (options.signal?.aborted)
      throw new TimeoutError(`${options.what} (cancelled)`, Date.now() - (deadline - options.timeoutMs));
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      const timeout = new TimeoutError(options.what, options.timeoutMs);
      if (lastError !== undefined) (timeout as Error & { cause?: unknown }).cause = lastError;
      throw timeout;
    }
    await sleep(
      Math.min(remaining, Math.max(0, options.intervalMs - (Date.now() - startedAt))),
      options.signal,
    );
  }
}

/** Rejects with a TimeoutError when `promise` does not settle within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
