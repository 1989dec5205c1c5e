/**
 * The migration plan of a rolling reboot: a pure function of a pool snapshot (no I/O, no clock, no
 * randomness). It simulates the run host by host on memory figures, so a plan it returns never
 * overcommits a host, and a refusal names the step that does not fit.
 */
import { formatBytes } from './format.js';
import {
  compareHosts,
  compareNatural,
  guestCapacity,
  type PoolSnapshot,
  rollingOrder,
  type SnapshotHost,
  type SnapshotVm,
} from './snapshot.js';

export interface Migration {
  vmId: string;
  vmName: string;
  memory: number;
  from: string;
  to: string;
}

/** One host of the run; its migrations are ordered largest VM first. */
export interface HostStep {
  hostId: string;
  hostName: string;
  migrations: Migration[];
}

export interface RollingPlan {
  order: string[];
  steps: HostStep[];
  totalMigrations: number;
  /** The fewest migrations any plan with this order can make (see `countOptimalMigrations`). */
  optimalMigrations: number;
  memoryMoved: number;
}

export type PlanRefusal =
  | {
      kind: 'capacity';
      hostId: string;
      hostName: string;
      vms: Array<{ id: string; name: string; memory: number }>;
      /** Bytes missing to place them (a lower bound: at least this much more memory is needed). */
      shortfall: number;
      message: string;
      /** The steps before this host, which did fit: where the pool stands when the host does not. */
      stepsBefore?: HostStep[];
      /** The host's VMs that did fit, placed before finding that the listed ones do not. */
      placed?: Migration[];
    }
  | {
      kind: 'blocked';
      hostId: string;
      hostName: string;
      vms: Array<{ id: string; name: string; reason: string[] }>;
      message: string;
    }
  | { kind: 'invalid'; message: string };

export type PlanResult = { ok: true; plan: RollingPlan } | { ok: false; refusal: PlanRefusal };

export type EvacuationResult = { ok: true; step: HostStep } | { ok: false; refusal: PlanRefusal };

/** VMs named in full in a refusal message; the rest are counted. */
const LISTED_VMS = 10;

/**
 * Plans the whole run: the pool master first, then the other hosts by natural name. Each host's
 * VMs go to the host rebooted just before it when they fit, so each VM moves once and the first
 * host's VMs twice. Refuses when a host has VMs that cannot be migrated or that do not fit.
 */
export function planRollingReboot(snapshot: PoolSnapshot): PlanResult {
  const problem = findInvalidInput(snapshot);
  if (problem) return { ok: false, refusal: { kind: 'invalid', message: problem } };
  const order = rollingOrder(snapshot);
  const blocked = findBlockedHost(snapshot, order);
  if (blocked) return { ok: false, refusal: blocked };

  const pool = new PoolSimulation(snapshot);
  const done = snapshot.doneHostIds ?? [];
  const steps: HostStep[] = [];
  for (const [k, host] of order.entries()) {
    const rebootedBefore = order.slice(0, k).map((h) => h.id);
    const outcome = pool.evacuate(
      host,
      { justBefore: rebootedBefore.at(-1), others: [...rebootedBefore.slice(0, -1), ...done] },
      order.slice(k + 1),
    );
    if (outcome.unplaced.length > 0) {
      return { ok: false, refusal: capacityRefusal(pool, host, outcome, steps) };
    }
    steps.push({ hostId: host.id, hostName: host.name, migrations: outcome.placed });
    pool.reboot(host.id);
  }

  const migrations = steps.flatMap((step) => step.migrations);
  return {
    ok: true,
    plan: {
      order: order.map((host) => host.id),
      steps,
      totalMigrations: migrations.length,
      optimalMigrations: countOptimalMigrations(snapshot, order),
      memoryMoved: migrations.reduce((sum, migration) => sum + migration.memory, 0),
    },
  };
}

/**
 * Plans one host from live state, with the same rules as `planRollingReboot`. `preferredDestinations`
 * are hosts already rebooted in this run, the host rebooted just before this one first; hosts in
 * the snapshot's `doneHostIds` count as rebooted too.
 */
export function planHostEvacuation(
  snapshot: PoolSnapshot,
  hostId: string,
  preferredDestinations: readonly string[],
): EvacuationResult {
  const problem =
    findInvalidInput(snapshot) ?? findInvalidEvacuation(snapshot, hostId, preferredDestinations);
  if (problem) return { ok: false, refusal: { kind: 'invalid', message: problem } };
  const host = snapshot.hosts.find((h) => h.id === hostId);
  if (!host) return { ok: false, refusal: { kind: 'invalid', message: `Host ${hostId} is not in the pool` } };
  const blocked = findBlockedHost(snapshot, [host]);
  if (blocked) return { ok: false, refusal: blocked };

  const rebooted = new Set([...preferredDestinations, ...(snapshot.doneHostIds ?? [])]);
  const upcoming = rollingOrder(snapshot).filter((h) => h.id !== hostId && !rebooted.has(h.id));
  const pool = new PoolSimulation(snapshot);
  const outcome = pool.evacuate(
    host,
    {
      justBefore: preferredDestinations[0],
      others: [...rebooted].filter((id) => id !== preferredDestinations[0]),
    },
    upcoming,
  );
  if (outcome.unplaced.length > 0) return { ok: false, refusal: capacityRefusal(pool, host, outcome, []) };
  return { ok: true, step: { hostId: host.id, hostName: host.name, migrations: outcome.placed } };
}

/**
 * The fewest migrations possible with this order: every VM on a host that is rebooted moves at
 * least once, and the first host's VMs at least twice when no host is fresh yet (a resumed run can
 * already have rebooted hosts, which take the first host's VMs for good).
 */
export function countOptimalMigrations(snapshot: PoolSnapshot, order: readonly SnapshotHost[]): number {
  const rebooting = new Set(order.map((host) => host.id));
  const moving = snapshot.vms.filter((vm) => rebooting.has(vm.residentOn)).length;
  const first = order[0];
  if (!first) return moving;
  const ignored = new Set(snapshot.ignoredHostIds);
  const done = new Set(snapshot.doneHostIds ?? []);
  const freshAtStart = snapshot.hosts.some(
    (h) => done.has(h.id) && !ignored.has(h.id) && h.enabled && h.live,
  );
  return freshAtStart ? moving : moving + snapshot.vms.filter((vm) => vm.residentOn === first.id).length;
}

interface Preferred {
  /** The host rebooted just before the one being emptied: tried first. */
  justBefore: string | undefined;
  /** Other hosts already rebooted: taken by most free memory. */
  others: readonly string[];
}

interface SimHost {
  host: SnapshotHost;
  /** Position in natural name order: breaks ties so the plan does not depend on input order. */
  rank: number;
  capacity: number;
  used: number;
  enabled: boolean;
  live: boolean;
  ignored: boolean;
  residents: SnapshotVm[];
}

interface EvacuationOutcome {
  placed: Migration[];
  unplaced: SnapshotVm[];
}

const freeOf = (host: SimHost) => host.capacity - host.used;
const rankOf = (host: SimHost) => host.rank;

/** The pool's memory as the run would change it, one host at a time. */
class PoolSimulation {
  readonly #hosts = new Map<string, SimHost>();

  constructor(snapshot: PoolSnapshot) {
    const ignored = new Set(snapshot.ignoredHostIds);
    const ranked = [...snapshot.hosts].sort(compareHosts);
    for (const [rank, host] of ranked.entries()) {
      const residents = snapshot.vms.filter((vm) => vm.residentOn === host.id);
      const used = sumMemory(residents);
      this.#hosts.set(host.id, {
        host,
        rank,
        capacity: guestCapacity(host, used),
        used,
        enabled: host.enabled,
        live: host.live,
        ignored: ignored.has(host.id),
        residents,
      });
    }
  }

  evacuate(host: SnapshotHost, preferred: Preferred, upcoming: readonly SnapshotHost[]): EvacuationOutcome {
    const source = this.#get(host.id);
    const outcome: EvacuationOutcome = { placed: [], unplaced: [] };
    for (const vm of [...source.residents].sort(largestFirst)) {
      const destination = this.#chooseDestination(vm, source, preferred, upcoming);
      if (!destination) {
        outcome.unplaced.push(vm);
        continue;
      }
      this.#move(vm, source, destination);
      outcome.placed.push({
        vmId: vm.id,
        vmName: vm.name,
        memory: vm.memory,
        from: source.host.id,
        to: destination.host.id,
      });
    }
    return outcome;
  }

  reboot(hostId: string): void {
    const host = this.#get(hostId);
    host.enabled = true;
    host.live = true;
  }

  /** Free memory of every host that may receive VMs while `emptying` is out. */
  destinationsWhileEmptying(emptyingId: string): Array<{ host: SnapshotHost; free: number }> {
    return [...this.#hosts.values()]
      .filter((h) => this.#accepts(h, emptyingId))
      .map((h) => ({ host: h.host, free: freeOf(h) }));
  }

  /**
   * Fresh hosts first (moving there is final), then a host still to be rebooted with room to spare
   * for its own turn, then any host with room (those VMs will move again).
   */
  #chooseDestination(
    vm: SnapshotVm,
    source: SimHost,
    preferred: Preferred,
    upcoming: readonly SnapshotHost[],
  ): SimHost | undefined {
    const fits = (h: SimHost) => this.#accepts(h, source.host.id) && freeOf(h) >= vm.memory;
    const justBefore = preferred.justBefore === undefined ? undefined : this.#hosts.get(preferred.justBefore);
    if (justBefore && fits(justBefore)) return justBefore;

    const fresh = preferred.others.flatMap((id) => this.#hosts.get(id) ?? []).filter(fits);
    const roomiestFresh = pickMost(fresh, freeOf, rankOf);
    if (roomiestFresh) return roomiestFresh;

    const parkable: Array<{ candidate: SimHost; slack: number }> = [];
    let before = source;
    for (const next of upcoming) {
      const candidate = this.#get(next.id);
      const slack = this.#slack(candidate, before);
      if (this.#accepts(candidate, source.host.id) && slack >= vm.memory) parkable.push({ candidate, slack });
      before = candidate;
    }
    const mostSlack = pickMost(
      parkable,
      (p) => p.slack,
      (p) => p.candidate.rank,
    );
    if (mostSlack) return mostSlack.candidate;

    return pickMost([...this.#hosts.values()].filter(fits), freeOf, rankOf);
  }

  /**
   * Room on `host` that keeps its own turn cheap: when it is emptied, the host rebooted just before
   * it (`before`, empty and fresh by then) should take everything it holds.
   */
  #slack(host: SimHost, before: SimHost): number {
    return Math.min(freeOf(host), before.capacity - host.used);
  }

  #accepts(host: SimHost, emptyingId: string): boolean {
    return host.host.id !== emptyingId && !host.ignored && host.enabled && host.live;
  }

  #move(vm: SnapshotVm, from: SimHost, to: SimHost): void {
    from.residents = from.residents.filter((resident) => resident.id !== vm.id);
    from.used -= vm.memory;
    to.residents.push({ ...vm, residentOn: to.host.id });
    to.used += vm.memory;
  }

  #get(hostId: string): SimHost {
    const host = this.#hosts.get(hostId);
    if (!host) throw new Error(`planner simulation has no host ${hostId}`);
    return host;
  }
}

/** The candidate with the highest score; ties go to the lowest rank so the choice is deterministic. */
function pickMost<T>(
  candidates: readonly T[],
  score: (candidate: T) => number,
  rank: (candidate: T) => number,
): T | undefined {
  let best: T | undefined;
  for (const candidate of candidates) {
    const better =
      best === undefined ||
      score(candidate) > score(best) ||
      (score(candidate) === score(best) && rank(candidate) < rank(best));
    if (better) best = candidate;
  }
  return best;
}

function largestFirst(a: SnapshotVm, b: SnapshotVm): number {
  return b.memory - a.memory || byName(a, b);
}

function byName(a: SnapshotVm, b: SnapshotVm): number {
  return compareNatural(a.name, b.name) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function sumMemory(vms: ReadonlyArray<{ memory: number }>): number {
  return vms.reduce((sum, vm) => sum + vm.memory, 0);
}

function capacityRefusal(
  pool: PoolSimulation,
  host: SnapshotHost,
  outcome: EvacuationOutcome,
  stepsBefore: HostStep[],
): PlanRefusal {
  const frees = pool.destinationsWhileEmptying(host.id).map((d) => Math.max(0, d.free));
  const missing = sumMemory(outcome.unplaced);
  const largest = Math.max(...outcome.unplaced.map((vm) => vm.memory));
  // The larger of two lower bounds: what the allowed hosts lack in total (the same whatever the
  // earlier steps chose), and what the roomiest one lacks for the largest VM left over.
  const shortfall = Math.max(
    missing - frees.reduce((sum, free) => sum + free, 0),
    largest - Math.max(0, ...frees),
  );
  const count = outcome.unplaced.length;
  const listed = describeList(outcome.unplaced.map((vm) => `${vm.name} ${formatBytes(vm.memory)}`));
  return {
    kind: 'capacity',
    hostId: host.id,
    hostName: host.name,
    vms: outcome.unplaced.map((vm) => ({ id: vm.id, name: vm.name, memory: vm.memory })),
    shortfall,
    message:
      `Not enough capacity to empty ${host.name}: ${count} ${count === 1 ? 'VM' : 'VMs'} (${listed}) ` +
      `${count === 1 ? 'does' : 'do'} not fit; ${formatBytes(shortfall)} short`,
    stepsBefore,
    placed: outcome.placed,
  };
}

/** The first host of `order` running VMs that cannot be migrated, with XAPI's reasons. */
function findBlockedHost(snapshot: PoolSnapshot, order: readonly SnapshotHost[]): PlanRefusal | undefined {
  const reasons = new Map(snapshot.blockers.map((blocker) => [blocker.vmId, blocker.reason]));
  const blockedOn = (host: SnapshotHost) =>
    snapshot.vms
      .filter((vm) => vm.residentOn === host.id && reasons.has(vm.id))
      .sort(byName)
      .map((vm) => ({ id: vm.id, name: vm.name, reason: reasons.get(vm.id) ?? [] }));
  const blockedHosts = order.filter((host) => blockedOn(host).length > 0);
  const [first, ...others] = blockedHosts;
  if (!first) return undefined;
  const vms = blockedOn(first);
  const also = others.length > 0 ? ` (also blocked: ${others.map((h) => h.name).join(', ')})` : '';
  return {
    kind: 'blocked',
    hostId: first.id,
    hostName: first.name,
    vms,
    message:
      `Cannot empty ${first.name}: ${vms.length} ${vms.length === 1 ? 'VM' : 'VMs'} cannot be migrated: ` +
      `${describeList(vms.map((vm) => `${vm.name} (${vm.reason.join(' ')})`))}${also}`,
  };
}

function describeList(items: readonly string[]): string {
  if (items.length <= LISTED_VMS) return items.join(', ');
  return `${items.slice(0, LISTED_VMS).join(', ')} and ${items.length - LISTED_VMS} more`;
}

/** The first inconsistency that makes the snapshot unusable, phrased for the operator. */
function findInvalidInput(snapshot: PoolSnapshot): string | undefined {
  if (snapshot.hosts.length === 0) return 'The pool snapshot lists no hosts';
  const hostIds = new Set<string>();
  for (const host of snapshot.hosts) {
    if (hostIds.has(host.id)) return `Host ${host.id} is listed twice`;
    hostIds.add(host.id);
    if (!isMemory(host.memoryTotal) || !isMemory(host.memoryFree)) {
      return `Host ${host.name} has invalid memory figures (total ${host.memoryTotal}, free ${host.memoryFree})`;
    }
  }
  if (!hostIds.has(snapshot.masterId))
    return `The pool master ${snapshot.masterId} is not among the pool's hosts`;
  const vmIds = new Set<string>();
  for (const vm of snapshot.vms) {
    if (vmIds.has(vm.id)) return `VM ${vm.name} (${vm.id}) is listed twice`;
    vmIds.add(vm.id);
    if (!isMemory(vm.memory)) return `VM ${vm.name} (${vm.id}) has invalid memory ${vm.memory}`;
    if (!hostIds.has(vm.residentOn)) return `VM ${vm.name} (${vm.id}) runs on unknown host ${vm.residentOn}`;
  }
  const unknownHost = [...snapshot.ignoredHostIds, ...(snapshot.doneHostIds ?? [])].find(
    (id) => !hostIds.has(id),
  );
  if (unknownHost !== undefined) return `Host ${unknownHost} is not in the pool`;
  const unknownVm = snapshot.blockers.find((blocker) => !vmIds.has(blocker.vmId));
  if (unknownVm) return `A blocker names VM ${unknownVm.vmId}, which is not a running VM of the pool`;
  return undefined;
}

function findInvalidEvacuation(
  snapshot: PoolSnapshot,
  hostId: string,
  preferredDestinations: readonly string[],
): string | undefined {
  const hostIds = new Set(snapshot.hosts.map((host) => host.id));
  if (snapshot.ignoredHostIds.includes(hostId)) return `Host ${hostId} is ignored in this run`;
  const unknown = preferredDestinations.find((id) => !hostIds.has(id));
  return unknown === undefined ? undefined : `Host ${unknown} is not in the pool`;
}

function isMemory(bytes: number): boolean {
  return Number.isFinite(bytes) && bytes >= 0;
}

export type ReplayViolationKind =
  | 'wrong-order'
  | 'host-not-rebooted'
  | 'host-rebooted-twice'
  | 'ignored-host-rebooted'
  | 'done-host-rebooted'
  | 'unknown-host'
  | 'unknown-vm'
  | 'wrong-source'
  | 'wrong-memory'
  | 'blocked-vm-moved'
  | 'vm-not-placed'
  | 'destination-self'
  | 'destination-ignored'
  | 'destination-disabled'
  | 'destination-not-live'
  | 'overcommit'
  | 'vm-left-on-host'
  | 'wrong-totals';

export interface ReplayViolation {
  kind: ReplayViolationKind;
  /** Index in `plan.steps`; absent for whole-plan problems. */
  step?: number;
  hostId?: string;
  vmId?: string;
  message: string;
}

export interface ReplayReport {
  violations: ReplayViolation[];
  migrations: number;
  memoryMoved: number;
  /** Where each VM runs once the replayed steps are done (a VM left on a rebooted host stays listed there). */
  residency: Record<string, string>;
}

/**
 * Checks a plan by running it step by step on the snapshot's memory figures, independently of how
 * the planner chose: every violation is reported, not just the first. The host of each step is
 * disabled while it is emptied and enabled and live again after its reboot.
 */
export function replayPlan(snapshot: PoolSnapshot, plan: RollingPlan): ReplayReport {
  const violations: ReplayViolation[] = [];
  const hosts = new Map(snapshot.hosts.map((host) => [host.id, host]));
  const vms = new Map(snapshot.vms.map((vm) => [vm.id, vm]));
  const residency = new Map(snapshot.vms.map((vm) => [vm.id, vm.residentOn]));
  const used = new Map(snapshot.hosts.map((host) => [host.id, 0]));
  for (const vm of snapshot.vms) used.set(vm.residentOn, (used.get(vm.residentOn) ?? 0) + vm.memory);
  const capacity = new Map(
    snapshot.hosts.map((host) => [host.id, guestCapacity(host, used.get(host.id) ?? 0)]),
  );
  const enabled = new Map(snapshot.hosts.map((host) => [host.id, host.enabled]));
  const live = new Map(snapshot.hosts.map((host) => [host.id, host.live]));
  const ignored = new Set(snapshot.ignoredHostIds);
  const done = new Set(snapshot.doneHostIds ?? []);
  const blocked = new Set(snapshot.blockers.map((blocker) => blocker.vmId));
  const nameOf = (hostId: string) => hosts.get(hostId)?.name ?? hostId;

  const expectedOrder = rollingOrder(snapshot).map((host) => host.id);
  if (plan.order.join('\n') !== expectedOrder.join('\n')) {
    violations.push({
      kind: 'wrong-order',
      message: `plan order ${plan.order.map(nameOf).join(', ')} is not ${expectedOrder.map(nameOf).join(', ')}`,
    });
  }

  const rebooted = new Set<string>();
  let migrations = 0;
  let memoryMoved = 0;
  for (const [step, { hostId, migrations: moves }] of plan.steps.entries()) {
    const at = (kind: ReplayViolationKind, message: string, vmId?: string) =>
      violations.push({ kind, step, hostId, ...(vmId === undefined ? {} : { vmId }), message });
    if (!hosts.has(hostId)) {
      at('unknown-host', `step ${step} reboots unknown host ${hostId}`);
      continue;
    }
    const host = nameOf(hostId);
    if (expectedOrder[step] !== hostId) at('wrong-order', `step ${step} reboots ${host} out of order`);
    if (ignored.has(hostId)) at('ignored-host-rebooted', `${host} is ignored but rebooted`);
    if (done.has(hostId)) at('done-host-rebooted', `${host} was already done but is rebooted again`);
    if (rebooted.has(hostId)) at('host-rebooted-twice', `${host} is rebooted twice`);

    for (const move of moves) {
      migrations += 1;
      memoryMoved += move.memory;
      const vm = vms.get(move.vmId);
      if (!vm) {
        at('unknown-vm', `step ${step} migrates unknown VM ${move.vmId}`, move.vmId);
        continue;
      }
      const from = residency.get(vm.id) ?? vm.residentOn;
      if (from !== hostId || move.from !== hostId) {
        at(
          'wrong-source',
          `${vm.name} runs on ${nameOf(from)}, not on ${host} (migration says ${move.from})`,
          vm.id,
        );
      }
      if (move.memory !== vm.memory)
        at('wrong-memory', `${vm.name} is ${vm.memory} bytes, not ${move.memory}`, vm.id);
      if (blocked.has(vm.id)) at('blocked-vm-moved', `${vm.name} cannot be migrated but is`, vm.id);
      if (!hosts.has(move.to)) {
        at('vm-not-placed', `${vm.name} goes to unknown host ${move.to}`, vm.id);
        continue;
      }
      const to = nameOf(move.to);
      if (move.to === hostId) {
        at('destination-self', `${vm.name} is "moved" to ${host}, the host being emptied`, vm.id);
        continue;
      }
      if (ignored.has(move.to)) at('destination-ignored', `${vm.name} goes to ignored host ${to}`, vm.id);
      if (!enabled.get(move.to)) at('destination-disabled', `${vm.name} goes to disabled host ${to}`, vm.id);
      if (!live.get(move.to))
        at('destination-not-live', `${vm.name} goes to ${to}, which is not live`, vm.id);
      used.set(from, (used.get(from) ?? 0) - vm.memory);
      used.set(move.to, (used.get(move.to) ?? 0) + vm.memory);
      residency.set(vm.id, move.to);
      const free = (capacity.get(move.to) ?? 0) - (used.get(move.to) ?? 0);
      if (free < 0) at('overcommit', `${vm.name} overcommits ${to} by ${formatBytes(-free)}`, vm.id);
    }

    for (const [vmId, residentOn] of residency) {
      if (residentOn !== hostId) continue;
      at('vm-left-on-host', `${vms.get(vmId)?.name ?? vmId} is still on ${host} when it is rebooted`, vmId);
    }
    rebooted.add(hostId);
    enabled.set(hostId, true);
    live.set(hostId, true);
  }

  for (const hostId of expectedOrder) {
    if (!rebooted.has(hostId)) {
      violations.push({ kind: 'host-not-rebooted', hostId, message: `${nameOf(hostId)} is never rebooted` });
    }
  }
  if (plan.totalMigrations !== migrations || plan.memoryMoved !== memoryMoved) {
    violations.push({
      kind: 'wrong-totals',
      message:
        `plan claims ${plan.totalMigrations} migrations moving ${plan.memoryMoved} bytes; ` +
        `its steps hold ${migrations} moving ${memoryMoved}`,
    });
  }
  return { violations, migrations, memoryMoved, residency: Object.fromEntries(residency) };
}
