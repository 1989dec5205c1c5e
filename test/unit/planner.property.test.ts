import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatBytes } from '../../src/engine/format.js';
import {
  type HostStep,
  type PlanRefusal,
  planHostEvacuation,
  planRollingReboot,
  type RollingPlan,
  replayPlan,
} from '../../src/engine/planner.js';
import {
  compareNatural,
  type PoolSnapshot,
  type SnapshotHost,
  type SnapshotVm,
} from '../../src/engine/snapshot.js';

const GiB = 1024 ** 3;
/** VM sizes are whole multiples of 0.5 GiB, from 0.5 to 32 GiB. */
const UNIT = GiB / 2;
const RUNS = { numRuns: 200 };

// ---------------------------------------------------------------------------------------------
// Random pools: 2-12 hosts, mixed VM sizes, random loads; some hosts ignored, done, disabled or
// dead, some memory the VMs do not explain, sometimes a VM that cannot be migrated.

const rawHost = fc.record({
  totalGiB: fc.integer({ min: 32, max: 256 }),
  loadPercent: fc.integer({ min: 0, max: 100 }),
  vmUnits: fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 16 }),
  unexplainedUnits: fc.oneof(
    { weight: 4, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 8 }) },
  ),
  state: fc.oneof(
    { weight: 12, arbitrary: fc.constant('up' as const) },
    { weight: 1, arbitrary: fc.constant('disabled' as const) },
    { weight: 1, arbitrary: fc.constant('dead' as const) },
  ),
  role: fc.oneof(
    { weight: 8, arbitrary: fc.constant('reboot' as const) },
    { weight: 1, arbitrary: fc.constant('ignored' as const) },
    { weight: 1, arbitrary: fc.constant('done' as const) },
  ),
});

const randomPool: fc.Arbitrary<PoolSnapshot> = fc
  .integer({ min: 2, max: 12 })
  .chain((count) =>
    fc.record({
      hosts: fc.array(rawHost, { minLength: count, maxLength: count }),
      numbers: fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { minLength: count, maxLength: count }),
      master: fc.nat({ max: count - 1 }),
      blocker: fc.oneof({ weight: 10, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat() }),
    }),
  )
  .map(({ hosts: raw, numbers, master, blocker }) => {
    const hosts: SnapshotHost[] = [];
    const vms: SnapshotVm[] = [];
    for (const [i, spec] of raw.entries()) {
      const total = spec.totalGiB * GiB;
      let load = 0;
      for (const [j, units] of spec.vmUnits.entries()) {
        if (load + units * UNIT > (total * spec.loadPercent) / 100) continue;
        load += units * UNIT;
        vms.push({
          id: `vm-${i}-${j}`,
          name: `i-${numbers[i]}-${j}`,
          memory: units * UNIT,
          residentOn: `host-${i}`,
        });
      }
      const unexplained = Math.min(spec.unexplainedUnits * UNIT, total - load);
      hosts.push({
        id: `host-${i}`,
        name: `xen${numbers[i]}`,
        memoryTotal: total,
        memoryFree: total - load - unexplained,
        enabled: spec.state !== 'disabled',
        live: spec.state !== 'dead',
      });
    }
    const withRole = (role: string) => raw.flatMap((spec, i) => (spec.role === role ? [`host-${i}`] : []));
    const blocked = blocker === null ? undefined : vms[blocker % Math.max(1, vms.length)];
    return {
      hosts,
      vms,
      masterId: `host-${master}`,
      ignoredHostIds: withRole('ignored'),
      doneHostIds: withRole('done'),
      blockers: blocked
        ? [{ vmId: blocked.id, reason: ['VM_REQUIRES_SR', `OpaqueRef:${blocked.id}`, 'OpaqueRef:sr'] }]
        : [],
    };
  });

// ---------------------------------------------------------------------------------------------
// Pools built so the optimum is clearly reachable, with hosts of different sizes: every host has
// room for its share of the master's VMs (plus one largest VM), and the host rebooted before it
// can take all it then holds. Placing the master's VMs by free memory alone does not always work.

const optimalPool: fc.Arbitrary<PoolSnapshot> = fc
  .integer({ min: 2, max: 12 })
  .chain((count) =>
    fc.record({
      masterUnits: fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 10 }),
      hostUnits: fc.array(fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 16 }), {
        minLength: count,
        maxLength: count,
      }),
      totalUnits: fc.array(fc.integer({ min: 16, max: 512 }), { minLength: count, maxLength: count }),
      numbers: fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { minLength: count, maxLength: count }),
      master: fc.nat({ max: count - 1 }),
    }),
  )
  .map(({ masterUnits, hostUnits, totalUnits, numbers, master }) => {
    const count = numbers.length;
    const masterLoad = masterUnits.reduce((sum, u) => sum + u, 0);
    const largest = Math.max(0, ...masterUnits);
    // Worst-fit of the master's VMs by slack cannot get stuck when every other host's slack is
    // at least this: together they hold the master's load plus one largest VM per host.
    const slackPerHost = Math.ceil((masterLoad + (count - 2) * largest) / (count - 1));
    const totals = totalUnits.map((units, i) => Math.max(units, slackPerHost, i === master ? masterLoad : 0));
    const name = (i: number) => `node${numbers[i]}`;
    const order = [
      master,
      ...numbers
        .map((_, i) => i)
        .filter((i) => i !== master)
        .sort((a, b) => compareNatural(name(a), name(b))),
    ];
    const hosts: SnapshotHost[] = [];
    const vms: SnapshotVm[] = [];
    for (const [position, i] of order.entries()) {
      const total = totals[i] ?? 0;
      const before = totals[order[position - 1] ?? i] ?? 0;
      const own = position === 0 ? masterUnits : (hostUnits[i] ?? []);
      const limit = position === 0 ? total : Math.min(total, before) - slackPerHost;
      let load = 0;
      for (const [j, units] of own.entries()) {
        if (load + units > limit) continue;
        load += units;
        vms.push({ id: `vm-${i}-${j}`, name: `i-${i}-${j}`, memory: units * UNIT, residentOn: `host-${i}` });
      }
      hosts.push({
        id: `host-${i}`,
        name: name(i),
        memoryTotal: total * UNIT,
        memoryFree: (total - load) * UNIT,
        enabled: true,
        live: true,
      });
    }
    return { hosts, vms, masterId: `host-${master}`, ignoredHostIds: [], blockers: [] };
  });

// ---------------------------------------------------------------------------------------------
// An independent picture of the pool part-way through a plan, for judging refusals.

function capacityOf(snapshot: PoolSnapshot, host: SnapshotHost): number {
  const load = snapshot.vms.filter((vm) => vm.residentOn === host.id).reduce((sum, vm) => sum + vm.memory, 0);
  return host.memoryTotal - Math.max(0, host.memoryTotal - load - host.memoryFree);
}

function expectedOrder(snapshot: PoolSnapshot): string[] {
  const skipped = new Set([...snapshot.ignoredHostIds, ...(snapshot.doneHostIds ?? [])]);
  const rest = snapshot.hosts
    .filter((host) => !skipped.has(host.id) && host.id !== snapshot.masterId)
    .sort((a, b) => compareNatural(a.name, b.name))
    .map((host) => host.id);
  return skipped.has(snapshot.masterId) ? rest : [snapshot.masterId, ...rest];
}

function planFrom(steps: HostStep[], order: string[]): RollingPlan {
  const all = steps.flatMap((step) => step.migrations);
  return {
    order,
    steps,
    totalMigrations: all.length,
    optimalMigrations: 0,
    memoryMoved: all.reduce((sum, m) => sum + m.memory, 0),
  };
}

/** Checks a capacity refusal against a replay of the steps before it and the VMs placed so far. */
function expectGenuineCapacityRefusal(
  snapshot: PoolSnapshot,
  refusal: Extract<PlanRefusal, { kind: 'capacity' }>,
) {
  const order = expectedOrder(snapshot);
  const stepsBefore = refusal.stepsBefore ?? [];
  const index = stepsBefore.length;
  expect(stepsBefore.map((step) => step.hostId)).toEqual(order.slice(0, index));
  expect(order[index]).toBe(refusal.hostId);

  // Replaying what did fit leaves exactly the listed VMs on the host, and nothing else wrong.
  const partial = [
    ...stepsBefore,
    { hostId: refusal.hostId, hostName: refusal.hostName, migrations: refusal.placed ?? [] },
  ];
  const report = replayPlan(snapshot, planFrom(partial, order));
  const leftOver = report.violations.filter((v) => v.kind === 'vm-left-on-host').map((v) => v.vmId);
  const others = report.violations.filter(
    (v) => v.kind !== 'vm-left-on-host' && v.kind !== 'host-not-rebooted',
  );
  expect(others).toEqual([]);
  expect(leftOver.sort()).toEqual(refusal.vms.map((vm) => vm.id).sort());

  // No host that may take VMs at this point has room for any of them.
  const rebooted = new Set([...stepsBefore.map((step) => step.hostId), ...(snapshot.doneHostIds ?? [])]);
  const ignored = new Set(snapshot.ignoredHostIds);
  const stepsDone = new Set(stepsBefore.map((step) => step.hostId));
  const allowed = snapshot.hosts.filter(
    (h) => h.id !== refusal.hostId && !ignored.has(h.id) && (stepsDone.has(h.id) || (h.enabled && h.live)),
  );
  const frees = allowed.map((h) => {
    const resident = snapshot.vms.filter((vm) => report.residency[vm.id] === h.id);
    return Math.max(0, capacityOf(snapshot, h) - resident.reduce((sum, vm) => sum + vm.memory, 0));
  });
  const maxFree = Math.max(0, ...frees);
  for (const vm of refusal.vms) expect(vm.memory).toBeGreaterThan(maxFree);

  // The shortfall claims no more than is missing, and at least the plan-independent deficit.
  const missing = refusal.vms.reduce((sum, vm) => sum + vm.memory, 0);
  const totalFree = frees.reduce((sum, free) => sum + free, 0);
  const largest = Math.max(...refusal.vms.map((vm) => vm.memory));
  expect(refusal.shortfall).toBe(Math.max(missing - totalFree, largest - maxFree));
  expect(refusal.shortfall).toBeGreaterThan(0);
  const onAllowedOrHost = new Set([refusal.hostId, ...allowed.map((h) => h.id)]);
  const mustFit = snapshot.vms
    .filter((vm) => onAllowedOrHost.has(vm.residentOn))
    .reduce((s, vm) => s + vm.memory, 0);
  const room = allowed.reduce((sum, h) => sum + capacityOf(snapshot, h), 0);
  expect(refusal.shortfall).toBeGreaterThanOrEqual(mustFit - room);
  expect(rebooted.has(refusal.hostId)).toBe(false);

  expect(refusal.message).toContain(`to empty ${refusal.hostName}:`);
  expect(refusal.message).toContain(`${formatBytes(refusal.shortfall)} short`);
  for (const vm of refusal.vms.slice(0, 10))
    expect(refusal.message).toContain(`${vm.name} ${formatBytes(vm.memory)}`);
}

function expectGenuineBlockedRefusal(
  snapshot: PoolSnapshot,
  refusal: Extract<PlanRefusal, { kind: 'blocked' }>,
) {
  const reasons = new Map(snapshot.blockers.map((b) => [b.vmId, b.reason]));
  const residentOn = new Map(snapshot.vms.map((vm) => [vm.id, vm.residentOn]));
  const blockedHosts = expectedOrder(snapshot).filter((hostId) =>
    [...reasons.keys()].some((vmId) => residentOn.get(vmId) === hostId),
  );
  expect(refusal.hostId).toBe(blockedHosts[0]);
  expect(refusal.vms.length).toBeGreaterThan(0);
  for (const vm of refusal.vms) {
    expect(residentOn.get(vm.id)).toBe(refusal.hostId);
    expect(vm.reason).toEqual(reasons.get(vm.id));
    expect(refusal.message).toContain(`${vm.name} (${vm.reason.join(' ')})`);
  }
}

describe('planRollingReboot on random pools', () => {
  it('(1, 5) plans replay without violation, place every VM and never beat the optimum', () => {
    let planned = 0;
    fc.assert(
      fc.property(randomPool, (snapshot) => {
        const result = planRollingReboot(snapshot);
        if (!result.ok) return;
        planned += 1;
        const { plan } = result;
        const report = replayPlan(snapshot, plan);
        expect(report.violations).toEqual([]);
        const order = new Set(plan.order);
        for (const vm of snapshot.vms) {
          const host = report.residency[vm.id];
          expect(host).toBeDefined();
          // VMs of hosts that are not rebooted stay put; the others end on a host that is up.
          if (!order.has(vm.residentOn)) expect(host).toBe(vm.residentOn);
          else expect(snapshot.ignoredHostIds).not.toContain(host);
        }
        for (const step of plan.steps) {
          const sizes = step.migrations.map((m) => m.memory);
          expect(sizes).toEqual([...sizes].sort((a, b) => b - a));
        }
        expect(plan.totalMigrations).toBeGreaterThanOrEqual(plan.optimalMigrations);
      }),
      RUNS,
    );
    // Guard against a generator that only makes pools the planner refuses.
    expect(planned).toBeGreaterThan(RUNS.numRuns / 5);
  });

  it('(2) is deterministic: the same pool, listed in any order, gives the same answer', () => {
    const shuffled = randomPool.chain((snapshot) =>
      fc.tuple(
        fc.constant(snapshot),
        fc.shuffledSubarray(snapshot.hosts, { minLength: snapshot.hosts.length }),
        fc.shuffledSubarray(snapshot.vms, { minLength: snapshot.vms.length }),
        fc.shuffledSubarray(snapshot.doneHostIds ?? [], { minLength: snapshot.doneHostIds?.length ?? 0 }),
      ),
    );
    fc.assert(
      fc.property(shuffled, ([snapshot, hosts, vms, doneHostIds]) => {
        const first = planRollingReboot(snapshot);
        expect(planRollingReboot(structuredClone(snapshot))).toEqual(first);
        expect(planRollingReboot({ ...snapshot, hosts, vms, doneHostIds })).toEqual(first);
      }),
      RUNS,
    );
  });

  it('(3) refuses only for the reason it gives, at the point of the plan it names', () => {
    const seen = { capacity: 0, blocked: 0 };
    fc.assert(
      fc.property(randomPool, (snapshot) => {
        const result = planRollingReboot(snapshot);
        if (result.ok) return;
        const { refusal } = result;
        if (refusal.kind === 'invalid') throw new Error(`valid pool refused as invalid: ${refusal.message}`);
        seen[refusal.kind] += 1;
        if (refusal.kind === 'capacity') expectGenuineCapacityRefusal(snapshot, refusal);
        else expectGenuineBlockedRefusal(snapshot, refusal);
      }),
      RUNS,
    );
    expect(seen.capacity).toBeGreaterThan(0);
    expect(seen.blocked).toBeGreaterThan(0);
  });

  it('(4) reaches the optimum when capacity clearly allows it', () => {
    fc.assert(
      fc.property(optimalPool, (snapshot) => {
        const result = planRollingReboot(snapshot);
        if (!result.ok) throw new Error(`refused: ${result.refusal.message}`);
        expect(replayPlan(snapshot, result.plan).violations).toEqual([]);
        const first = result.plan.order[0];
        const onFirst = snapshot.vms.filter((vm) => vm.residentOn === first).length;
        expect(result.plan.optimalMigrations).toBe(snapshot.vms.length + onFirst);
        expect(result.plan.totalMigrations).toBe(result.plan.optimalMigrations);
      }),
      RUNS,
    );
  });

  it('(6) re-planning each host from the state the plan predicts gives the same step', () => {
    fc.assert(
      fc.property(randomPool, (snapshot) => {
        const result = planRollingReboot(snapshot);
        if (!result.ok) return;
        const capacity = new Map(snapshot.hosts.map((h) => [h.id, capacityOf(snapshot, h)]));
        let vms = snapshot.vms;
        const rebooted: string[] = [];
        for (const step of result.plan.steps) {
          const live: PoolSnapshot = {
            ...snapshot,
            vms,
            hosts: snapshot.hosts.map((h) => {
              const load = vms.filter((vm) => vm.residentOn === h.id).reduce((sum, vm) => sum + vm.memory, 0);
              const fresh = rebooted.includes(h.id);
              return {
                ...h,
                memoryFree: (capacity.get(h.id) ?? 0) - load,
                enabled: fresh || h.enabled,
                live: fresh || h.live,
              };
            }),
          };
          expect(planHostEvacuation(live, step.hostId, [...rebooted].reverse())).toEqual({ ok: true, step });
          const destination = new Map(step.migrations.map((m) => [m.vmId, m.to]));
          vms = vms.map((vm) => ({ ...vm, residentOn: destination.get(vm.id) ?? vm.residentOn }));
          rebooted.push(step.hostId);
        }
      }),
      RUNS,
    );
  });
});
