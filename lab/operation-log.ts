/**
 * The lab's record of everything that happened, in order. Tests and the invariant checker read
 * it to judge what the bot really did, instead of trusting what the bot says it did.
 */

export interface Operation {
  /** Position in the log, from 1. */
  seq: number;
  /** Milliseconds since the lab started. */
  at: number;
  /** What happened, e.g. `xapi.call`, `host.disabled`, `vm.migrated`, `cloudstack.call`, `ssh.exec`. */
  kind: string;
  host?: string;
  vm?: string;
  /** Anything else worth keeping (method names, parameters, error codes). Never secrets. */
  detail?: Record<string, unknown>;
}

export type OperationInput = Omit<Operation, 'seq' | 'at'>;

export class OperationLog {
  readonly #entries: Operation[] = [];
  readonly #startedAt = Date.now();
  readonly #listeners = new Set<(op: Operation) => void>();

  record(input: OperationInput): Operation {
    const op: Operation = { seq: this.#entries.length + 1, at: Date.now() - this.#startedAt, ...input };
    this.#entries.push(op);
    for (const listener of this.#listeners) listener(op);
    return op;
  }

  entries(): readonly Operation[] {
    return this.#entries;
  }

  ofKind(kind: string): Operation[] {
    return this.#entries.filter((op) => op.kind === kind);
  }

  /** Calls `listener` for every operation recorded from now on; returns an unsubscribe function. */
  subscribe(listener: (op: Operation) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
