/**
 * Live-migration timing: every migration leaving a host shares that host's NIC bandwidth with the
 * other migrations leaving it at the same moment, so five parallel migrations are not five times
 * faster than one. Progress is recomputed whenever a migration starts or ends.
 */

interface Transfer {
  remainingBytes: number;
  done: () => void;
}

class SourceLink {
  readonly #transfers = new Set<Transfer>();
  #lastUpdate = Date.now();
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly bytesPerSecond: number) {}

  add(bytes: number): Promise<void> {
    this.#advance();
    return new Promise<void>((resolve) => {
      this.#transfers.add({ remainingBytes: bytes, done: resolve });
      this.#schedule();
    });
  }

  cancelAll(): void {
    clearTimeout(this.#timer);
    for (const transfer of this.#transfers) transfer.done();
    this.#transfers.clear();
  }

  #advance(): void {
    const now = Date.now();
    const elapsedSeconds = (now - this.#lastUpdate) / 1000;
    this.#lastUpdate = now;
    if (this.#transfers.size === 0) return;
    const share = (this.bytesPerSecond / this.#transfers.size) * elapsedSeconds;
    for (const transfer of this.#transfers) transfer.remainingBytes -= share;
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#transfers.size === 0) return;
    const smallest = Math.min(...[...this.#transfers].map((t) => t.remainingBytes));
    const delayMs = Math.max(0, (smallest * this.#transfers.size * 1000) / this.bytesPerSecond);
    this.#timer = setTimeout(() => this.#finishDue(), Math.ceil(delayMs));
  }

  #finishDue(): void {
    this.#advance();
    for (const transfer of [...this.#transfers]) {
      // A byte of slack absorbs floating-point rounding of the shared rate.
      if (transfer.remainingBytes <= 1) {
        this.#transfers.delete(transfer);
        transfer.done();
      }
    }
    this.#schedule();
  }
}

export class MigrationLinks {
  readonly #links = new Map<string, SourceLink>();

  /** Resolves when `bytes` have crossed the source host's link, shared with its other transfers. */
  transfer(sourceHost: string, bytesPerSecond: number, bytes: number): Promise<void> {
    let link = this.#links.get(sourceHost);
    if (!link) {
      link = new SourceLink(bytesPerSecond);
      this.#links.set(sourceHost, link);
    }
    return link.add(bytes);
  }

  stop(): void {
    for (const link of this.#links.values()) link.cancelAll();
  }
}
