/**
 * Typed errors. Every error the bot raises carries a stable `code` operators can search for.
 * Errors from XAPI and CloudStack keep the remote system's own code and parameters verbatim.
 * Messages never contain secrets: callers pass only names, addresses and remote error text.
 */

export const ErrorCode = {
  Config: 'CRB_CONFIG',
  Usage: 'CRB_USAGE',
  Timeout: 'CRB_TIMEOUT',
  Xapi: 'CRB_XAPI',
  XapiTransport: 'CRB_XAPI_TRANSPORT',
  XapiProtocol: 'CRB_XAPI_PROTOCOL',
  CloudStack: 'CRB_CLOUDSTACK',
  CloudStackTransport: 'CRB_CLOUDSTACK_TRANSPORT',
  CloudStackProtocol: 'CRB_CLOUDSTACK_PROTOCOL',
  SshHostKeyUnknown: 'CRB_SSH_HOST_KEY_UNKNOWN',
  SshHostKeyChanged: 'CRB_SSH_HOST_KEY_CHANGED',
  SshAuth: 'CRB_SSH_AUTH',
  SshConnect: 'CRB_SSH_CONNECT',
  SshCommand: 'CRB_SSH_COMMAND',
  Preflight: 'CRB_PREFLIGHT',
  Capacity: 'CRB_CAPACITY',
  Aborted: 'CRB_ABORTED',
  NeedsAttention: 'CRB_NEEDS_ATTENTION',
  Checkpoint: 'CRB_CHECKPOINT',
  LockLost: 'CRB_LOCK_LOST',
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

export abstract class CodedError extends Error {
  abstract readonly code: ErrorCodeValue;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** One message per configuration problem, already phrased for the operator. */
export class ConfigError extends CodedError {
  readonly code = ErrorCode.Config;
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export class UsageError extends CodedError {
  readonly code = ErrorCode.Usage;
}

export class TimeoutError extends CodedError {
  readonly code = ErrorCode.Timeout;
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
  ) {
    super(`${what} did not finish within ${formatDuration(timeoutMs)}`);
  }
}

/**
 * An error answered by XAPI (`Status: Failure`). `xapiCode` and `params` are exactly the
 * `ErrorDescription` array XAPI sent, e.g. `HOST_NOT_ENOUGH_FREE_MEMORY ["2147483648","1073741824"]`.
 */
export class XapiError extends CodedError {
  readonly code = ErrorCode.Xapi;
  constructor(
    readonly xapiCode: string,
    readonly params: readonly string[],
    readonly method: string,
  ) {
    super(`XAPI ${method} failed: ${[xapiCode, ...params].join(' ')}`);
  }
}

/** The XAPI host could not be reached or did not answer in time (connection refused, reset, timeout). */
export class XapiTransportError extends CodedError {
  readonly code = ErrorCode.XapiTransport;
  constructor(
    message: string,
    readonly method: string,
    readonly host: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** XAPI answered something that is not a valid XML-RPC XAPI envelope (HTML error page, truncated XML...). */
export class XapiProtocolError extends CodedError {
  readonly code = ErrorCode.XapiProtocol;
}

/**
 * An error answered by CloudStack: `errorcode` (= HTTP status), `cserrorcode` and `errortext` verbatim.
 */
export class CloudStackError extends CodedError {
  readonly code = ErrorCode.CloudStack;
  constructor(
    readonly command: string,
    readonly errorCode: number,
    readonly csErrorCode: number | undefined,
    readonly errorText: string,
  ) {
    super(`CloudStack ${command} failed: ${errorCode}${csErrorCode ? `/${csErrorCode}` : ''} ${errorText}`);
  }
}

export class CloudStackTransportError extends CodedError {
  readonly code = ErrorCode.CloudStackTransport;
  constructor(
    message: string,
    readonly command: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class CloudStackProtocolError extends CodedError {
  readonly code = ErrorCode.CloudStackProtocol;
}

export class SshHostKeyUnknownError extends CodedError {
  readonly code = ErrorCode.SshHostKeyUnknown;
}

export class SshHostKeyChangedError extends CodedError {
  readonly code = ErrorCode.SshHostKeyChanged;
}

export class SshAuthError extends CodedError {
  readonly code = ErrorCode.SshAuth;
}

export class SshConnectError extends CodedError {
  readonly code = ErrorCode.SshConnect;
}

/** A remote command (liveness check or hook) ended with a non-zero exit code. */
export class SshCommandError extends CodedError {
  readonly code = ErrorCode.SshCommand;
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly output: string,
  ) {
    super(message);
  }
}

/**
 * This worker no longer holds the cluster's lock (it expired and another worker may hold it now):
 * nothing more may be changed on the cluster or in its checkpoint by this worker.
 */
export class LockLostError extends CodedError {
  readonly code = ErrorCode.LockLost;
  constructor(
    readonly cluster: string,
    readonly token: number,
  ) {
    super(`The lock on cluster ${cluster} (fencing token ${token}) is no longer held by this worker`);
  }
}

export function isCodedError(error: unknown): error is CodedError {
  return error instanceof CodedError;
}

/** A one-line description of any thrown value, safe to show an operator. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  const rest = seconds % 60;
  return rest === 0 ? `${minutes} min` : `${minutes} min ${rest} s`;
}
