/**
 * How a run ends, and the errors the executor uses internally to unwind to the right ending.
 */
import { CodedError, describeError, ErrorCode, isCodedError, XapiError } from '../errors.js';

export type RunOutcome =
  | { status: 'dry_run'; ok: boolean }
  | { status: 'refused'; reason: string }
  | { status: 'done'; attention: string[] }
  | { status: 'aborted' }
  | { status: 'failed'; reason: string }
  | { status: 'needs_attention'; host: string; reason: string; leftChanged: string[] }
  | { status: 'stopped'; leftChanged: string[] }
  | { status: 'suspended'; nextHost: string };

/** Exit codes of DESIGN.md section 4. */
export function exitCodeOf(outcome: RunOutcome): number {
  switch (outcome.status) {
    case 'dry_run':
      return outcome.ok ? 0 : 3;
    case 'refused':
      return 3;
    case 'done':
      return outcome.attention.length === 0 ? 0 : 1;
    case 'aborted':
      return 4;
    case 'failed':
    case 'needs_attention':
    case 'stopped':
    case 'suspended':
      return 1;
  }
}

/** The run cannot go on but the cluster can be put back safely (host re-enabled, cluster restored). */
export class StopSafelyError extends CodedError {
  readonly code = ErrorCode.Preflight;
  constructor(
    message: string,
    /** XAPI's ErrorDescription verbatim, or [code, message] of a local error. */
    readonly detail: string[],
  ) {
    super(message);
  }
}

/** A host is not back (or not trustworthy): halt, touch nothing else, say what is left changed. */
export class NeedsAttentionError extends CodedError {
  readonly code = ErrorCode.NeedsAttention;
  constructor(
    readonly host: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Abort was requested while a host was being emptied: stop there and restore. */
export class AbortedError extends CodedError {
  readonly code = ErrorCode.Aborted;
}

/** The error as an operator should see it: XAPI's description verbatim, else code and message. */
export function errorDetail(error: unknown): string[] {
  if (error instanceof XapiError) return [error.xapiCode, ...error.params];
  if (isCodedError(error)) return [error.code, error.message];
  return ['ERROR', describeError(error)];
}
