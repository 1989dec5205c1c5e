/**
 * Waiting on the lab by what it records or answers, never by fixed sleeps: every wait has a deadline and
 * says what it was waiting for when it gives up.
 */
import type { Operation, OperationLog } from '../../lab/operation-log.js';

/** The first operation (already logged or still to come) matching `predicate`. */
export function waitForOperation(
  log: OperationLog,
  predicate: (op: Operation) => boolean,
  what: string,
  timeoutMs = 5_000,
): Promise<Operation> {
  const existing = log.entries().find(predicate);
  if (existing) return Promise.resolve(existing);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const unsubscribe = log.subscribe((op) => {
      if (!predicate(op)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(op);
    });
  });
}

/** Logged operations of `kind` on `host` from now on (the first one). */
export function nextOperation(
  log: OperationLog,
  kind: string,
  host: string,
  timeoutMs = 5_000,
): Promise<Operation> {
  const after = log.entries().length;
  return waitForOperation(
    log,
    (op) => op.seq > after && op.kind === kind && op.host === host,
    `${kind} on ${host}`,
    timeoutMs,
  );
}

/** Polls `probe` (for states the lab reaches without logging, such as a socket closing) until it returns true. */
export async function until(
  probe: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 5_000,
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
