/**
 * The planner's input: a plain data picture of one pool at one moment (no I/O, no clients).
 * Pre-flight builds it from XAPI; tests and benchmarks build it by hand.
 */

export interface SnapshotHost {
  id: string;
  name: string;
  /** Bytes usable by guests on this host (what can be placed when it is empty). */
  memoryTotal: number;
  /** Bytes free right now. */
  memoryFree: number;
  /** XAPI `host.enabled`. */
  enabled: boolean;
  /** `host_metrics.live`. */
  live: boolean;
}

export interface SnapshotVm {
  id: string;
  name: string;
  /** Bytes reserved on its host. */
  memory: number;
  residentOn: string;
}

export interface PoolSnapshot {
  hosts: SnapshotHost[];
  /** Running guest VMs only (no control domains, templates, halted VMs). */
  vms: SnapshotVm[];
  masterId: string;
  /** Not rebooted, never a destination, their VMs stay put. */
  ignoredHostIds: string[];
  /** VMs that cannot be migrated, with XAPI's reason verbatim, e.g. ['VM_REQUIRES_SR', vmRef, srRef]. */
  blockers: Array<{ vmId: string; reason: string[] }>;
  /** Hosts already rebooted in this run (resume): not rebooted again, preferred as destinations. */
  doneHostIds?: string[];
}

/**
 * Natural order of names, so `host2` sorts before `host10`. Digit runs compare as numbers, text
 * by code point (not locale, so every machine agrees); equal-looking names fall back to the raw text.
 */
export function compareNatural(a: string, b: string): number {
  const left = a.split(/(\d+)/);
  const right = b.split(/(\d+)/);
  const length = Math.min(left.length, right.length);
  for (let i = 0; i < length; i++) {
    const x = left[i] ?? '';
    const y = right[i] ?? '';
    const order = i % 2 === 1 ? compareDigits(x, y) : compareText(x, y);
    if (order !== 0) return order;
  }
  if (left.length !== right.length) return left.length - right.length;
  return compareText(a, b);
}

/** Hosts by natural name, ties (equal names) by id: a total order that does not depend on input order. */
export function compareHosts(a: SnapshotHost, b: SnapshotHost): number {
  return compareNatural(a.name, b.name) || compareText(a.id, b.id);
}

/**
 * The hosts this run reboots, in order: the pool master first, then the others by natural name.
 * Hosts already done in this run and ignored hosts are left out.
 */
export function rollingOrder(snapshot: PoolSnapshot): SnapshotHost[] {
  const skipped = new Set([...snapshot.ignoredHostIds, ...(snapshot.doneHostIds ?? [])]);
  const candidates = snapshot.hosts.filter((host) => !skipped.has(host.id)).sort(compareHosts);
  const master = candidates.find((host) => host.id === snapshot.masterId);
  return master ? [master, ...candidates.filter((host) => host !== master)] : candidates;
}

/**
 * What the host can hold for the whole run. Free memory that the listed VMs do not explain (VM
 * overheads, dom0 growth) stays reserved even after a reboot: assuming it comes back would risk
 * `HOST_NOT_ENOUGH_FREE_MEMORY` half-way through a run, while keeping it only makes the plan cautious.
 */
export function guestCapacity(host: SnapshotHost, residentMemory: number): number {
  const unexplained = Math.max(0, host.memoryTotal - residentMemory - host.memoryFree);
  return host.memoryTotal - unexplained;
}

function compareDigits(x: string, y: string): number {
  const a = x.replace(/^0+(?=\d)/, '');
  const b = y.replace(/^0+(?=\d)/, '');
  return a.length - b.length || compareText(a, b);
}

function compareText(x: string, y: string): number {
  if (x === y) return 0;
  return x < y ? -1 : 1;
}
