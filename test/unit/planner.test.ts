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
import type { PoolSnapshot, SnapshotHost, SnapshotVm } from '../../src/engine/snapshot.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

interface HostSpec {
  name: string;
  totalGiB: number;
  vms?: Record<string, number>;
  enabled?: boolean;
  live?: boolean;
}

/** A consistent snapshot: free memory is exactly total minus the VMs listed on each host. */
function pool(
  master: string,
  specs: HostSpec[],
  extra: Partial<Pick<PoolSnapshot, 'ignoredHostIds' | 'blockers' | 'doneHostIds'>> = {},
): PoolSnapshot {
  const hosts: SnapshotHost[] = [];
  const vms: SnapshotVm[] = [];
  for (const spec of specs) {
    let load = 0;
    for (const [name, sizeGiB] of Object.entries(spec.vms ?? {})) {
      vms.push({ id: `vm:${name}`, name, memory: sizeGiB * GiB, residentOn: `h:${spec.name}` });
      load += sizeGiB * GiB;
    }
    hosts.push({
      id: `h:${spec.name}`,
      name: spec.name,
      memoryTotal: spec.totalGiB * GiB,
      memoryFree: spec.totalGiB * GiB - load,
      enabled: spec.enabled ?? true,
      live: spec.live ?? true,
    });
  }
  return { hosts, vms, masterId: `h:${master}`, ignoredHostIds: [], blockers: [], ...extra };
}

function planOf(snapshot: PoolSnapshot): RollingPlan {
  const result = planRollingReboot(snapshot);
  if (!result.ok) throw new Error(`expected a plan, got refusal: ${result.refusal.message}`);
  expect(replayPlan(snapshot, result.plan).violations).toEqual([]);
  return result.plan;
}

function refusalOf(snapshot: PoolSnapshot): PlanRefusal {
  const result = planRollingReboot(snapshot);
  if (result.ok) throw new Error('expected a refusal, got a plan');
  return result.refusal;
}

/** Each step as `host: vm->destination ...`, host names without the id prefix. */
function moves(plan: RollingPlan): string[] {
  return plan.steps.map(
    (step) =>
      `${step.hostName}: ${step.migrations.map((m) => `${m.vmName}->${m.to.replace('h:', '')}`).join(' ')}`,
  );
}

describe('planRollingReboot', () => {
  it('plans a 2-host pool: the master empties onto the other host, which then empties onto the master', () => {
    const snapshot = pool('xen1', [
      { name: 'xen1', totalGiB: 64, vms: { a: 8, b: 4 } },
      { name: 'xen2', totalGiB: 64, vms: { c: 16 } },
    ]);
    const plan = planOf(snapshot);
    expect(plan.order).toEqual(['h:xen1', 'h:xen2']);
    expect(moves(plan)).toEqual(['xen1: a->xen2 b->xen2', 'xen2: c->xen1 a->xen1 b->xen1']);
    expect(plan.totalMigrations).toBe(5);
    expect(plan.optimalMigrations).toBe(5);
    expect(plan.memoryMoved).toBe((8 + 4 + 16 + 8 + 4) * GiB);
    expect(plan.steps[1]?.migrations[0]).toEqual({
      vmId: 'vm:c',
      vmName: 'c',
      memory: 16 * GiB,
      from: 'h:xen2',
      to: 'h:xen1',
    });
  });

  it('reboots the master first even when its name sorts last', () => {
    const snapshot = pool('xen3', [
      { name: 'xen1', totalGiB: 32, vms: { a: 4 } },
      { name: 'xen2', totalGiB: 32, vms: { b: 4 } },
      { name: 'xen3', totalGiB: 32, vms: { m: 8 } },
    ]);
    const plan = planOf(snapshot);
    expect(plan.order).toEqual(['h:xen3', 'h:xen1', 'h:xen2']);
    // Equal slack on xen1 and xen2: the tie goes to the first in name order.
    expect(moves(plan)).toEqual(['xen3: m->xen1', 'xen1: m->xen3 a->xen3', 'xen2: b->xen1']);
    expect(plan.totalMigrations).toBe(plan.optimalMigrations);
    expect(plan.optimalMigrations).toBe(4);
  });

  it('orders a 6-host pool master first, then by natural name, each host emptying onto the one before', () => {
    const names = ['host11', 'host2', 'host10', 'host9', 'host1', 'host3'];
    const snapshot = pool(
      'host10',
      names.map((name) => ({ name, totalGiB: 128, vms: { [`${name}-big`]: 24, [`${name}-small`]: 2 } })),
    );
    const plan = planOf(snapshot);
    expect(plan.steps.map((step) => step.hostName)).toEqual([
      'host10',
      'host1',
      'host2',
      'host3',
      'host9',
      'host11',
    ]);
    for (const [k, step] of plan.steps.entries()) {
      if (k === 0) continue;
      const before = plan.steps[k - 1] as HostStep;
      expect(step.migrations.every((m) => m.to === before.hostId)).toBe(true);
      const sizes = step.migrations.map((m) => m.memory);
      expect(sizes).toEqual([...sizes].sort((x, y) => y - x));
    }
    expect(plan.optimalMigrations).toBe(12 + 2);
    expect(plan.totalMigrations).toBe(plan.optimalMigrations);
  });

  it('never reboots an ignored host, never sends VMs to it and leaves its VMs where they are', () => {
    const snapshot = pool(
      'h1',
      [
        { name: 'h1', totalGiB: 32, vms: { a: 8 } },
        { name: 'h2', totalGiB: 32, vms: { b: 8 } },
        { name: 'h3', totalGiB: 32, vms: { c: 8 } },
        { name: 'h4', totalGiB: 512, vms: { stay: 8 } },
      ],
      { ignoredHostIds: ['h:h4'] },
    );
    const plan = planOf(snapshot);
    expect(plan.order).toEqual(['h:h1', 'h:h2', 'h:h3']);
    const all = plan.steps.flatMap((step) => step.migrations);
    expect(all.some((m) => m.to === 'h:h4' || m.vmId === 'vm:stay')).toBe(false);
    expect(replayPlan(snapshot, plan).residency['vm:stay']).toBe('h:h4');
  });

  it("resumes: done hosts are not rebooted and take the first remaining host's VMs for good", () => {
    const snapshot = pool(
      'h1',
      [
        { name: 'h1', totalGiB: 64, vms: { m: 8 } },
        { name: 'h2', totalGiB: 64, vms: { p: 8 } },
        { name: 'h3', totalGiB: 64, vms: { x: 16, y: 4 } },
        { name: 'h4', totalGiB: 64, vms: { z: 8 } },
      ],
      { doneHostIds: ['h:h1', 'h:h2'] },
    );
    const plan = planOf(snapshot);
    expect(plan.order).toEqual(['h:h3', 'h:h4']);
    // h1 and h2 are both fresh: the roomiest (equal, so the first by name) takes x, then h2 has more room for y.
    expect(moves(plan)).toEqual(['h3: x->h1 y->h2', 'h4: z->h3']);
    expect(plan.optimalMigrations).toBe(3);
    expect(plan.totalMigrations).toBe(3);
  });

  it("refuses a host running a VM that cannot be migrated, with XAPI's reason verbatim", () => {
    const snapshot = pool(
      'h1',
      [
        { name: 'h1', totalGiB: 64, vms: { a: 8 } },
        { name: 'h2', totalGiB: 64, vms: { local: 8, b: 4 } },
        { name: 'h3', totalGiB: 64, vms: { pci: 4 } },
      ],
      {
        blockers: [
          { vmId: 'vm:local', reason: ['VM_REQUIRES_SR', 'OpaqueRef:vm-local', 'OpaqueRef:sr-local'] },
          { vmId: 'vm:pci', reason: ['VM_HAS_PCI_ATTACHED', 'OpaqueRef:vm-pci'] },
        ],
      },
    );
    expect(refusalOf(snapshot)).toEqual({
      kind: 'blocked',
      hostId: 'h:h2',
      hostName: 'h2',
      vms: [
        {
          id: 'vm:local',
          name: 'local',
          reason: ['VM_REQUIRES_SR', 'OpaqueRef:vm-local', 'OpaqueRef:sr-local'],
        },
      ],
      message:
        'Cannot empty h2: 1 VM cannot be migrated: local (VM_REQUIRES_SR OpaqueRef:vm-local OpaqueRef:sr-local)' +
        ' (also blocked: h3)',
    });
  });

  it('ignores blockers on hosts it does not reboot', () => {
    const snapshot = pool(
      'h1',
      [
        { name: 'h1', totalGiB: 64, vms: { a: 8 } },
        { name: 'h2', totalGiB: 64, vms: { b: 4 } },
        { name: 'h3', totalGiB: 64, vms: { local: 4 } },
      ],
      { ignoredHostIds: ['h:h3'], blockers: [{ vmId: 'vm:local', reason: ['VM_REQUIRES_SR', 'x', 'y'] }] },
    );
    expect(planOf(snapshot).order).toEqual(['h:h1', 'h:h2']);
  });

  it('refuses an N+1 shortfall naming the host, the VMs that do not fit and the bytes missing', () => {
    // At h3's turn only h1 and h2 (64 GiB) may hold the pool's 74.5 GiB of VMs: 10.5 GiB short.
    const snapshot = pool('h1', [
      { name: 'h1', totalGiB: 32, vms: { a: 3 } },
      { name: 'h2', totalGiB: 32, vms: { b: 26 } },
      { name: 'h3', totalGiB: 48, vms: { big: 32, 'vm-12': 8, 'vm-7': 4, small: 1.5 } },
    ]);
    const refusal = refusalOf(snapshot);
    expect(refusal).toMatchObject({
      kind: 'capacity',
      hostId: 'h:h3',
      hostName: 'h3',
      vms: [
        { id: 'vm:vm-12', name: 'vm-12', memory: 8 * GiB },
        { id: 'vm:vm-7', name: 'vm-7', memory: 4 * GiB },
      ],
      shortfall: 10.5 * GiB,
      message:
        'Not enough capacity to empty h3: 2 VMs (vm-12 8.0 GiB, vm-7 4.0 GiB) do not fit; 10.5 GiB short',
    });
    if (refusal.kind !== 'capacity') throw new Error('unreachable');
    expect(refusal.stepsBefore?.map((step) => step.hostName)).toEqual(['h1', 'h2']);
    expect(refusal.placed?.map((m) => `${m.vmName}->${m.to}`)).toEqual(['big->h:h2', 'small->h:h1']);
  });

  it('says "1 VM ... does not fit" when one VM is left over', () => {
    const snapshot = pool('h1', [
      { name: 'h1', totalGiB: 32, vms: { a: 2 } },
      { name: 'h2', totalGiB: 32, vms: { b: 20 } },
      { name: 'h3', totalGiB: 48, vms: { big: 32, 'vm-12': 8, 'vm-7': 4, small: 1.5 } },
    ]);
    expect(refusalOf(snapshot)).toMatchObject({
      kind: 'capacity',
      shortfall: 3.5 * GiB,
      message: 'Not enough capacity to empty h3: 1 VM (vm-7 4.0 GiB) does not fit; 3.5 GiB short',
    });
  });

  it("parks the master's VMs by slack where the naive most-free choice would cost extra migrations", () => {
    // h2 has the most free memory, but h1 (16 GiB) could not take h2's own VM plus the master's
    // 12 GiB at h2's turn. h3 has less free memory but the slack to take it.
    const snapshot = pool('h1', [
      { name: 'h1', totalGiB: 16, vms: { m: 12 } },
      { name: 'h2', totalGiB: 64, vms: { a: 8 } },
      { name: 'h3', totalGiB: 32, vms: { b: 8 } },
    ]);
    const plan = planOf(snapshot);
    expect(moves(plan)).toEqual(['h1: m->h3', 'h2: a->h1', 'h3: m->h2 b->h2']);
    expect(plan.totalMigrations).toBe(plan.optimalMigrations);
    expect(plan.optimalMigrations).toBe(4);

    // The naive choice, every host emptying onto the one rebooted just before, does not replay.
    const naive: RollingPlan = {
      ...plan,
      steps: [
        { hostId: 'h:h1', hostName: 'h1', migrations: [migration('m', 12, 'h1', 'h2')] },
        {
          hostId: 'h:h2',
          hostName: 'h2',
          migrations: [migration('m', 12, 'h2', 'h1'), migration('a', 8, 'h2', 'h1')],
        },
        { hostId: 'h:h3', hostName: 'h3', migrations: [migration('b', 8, 'h3', 'h2')] },
      ],
      totalMigrations: 4,
      memoryMoved: 40 * GiB,
    };
    expect(replayPlan(snapshot, naive).violations.map((v) => `${v.kind} ${v.vmId}`)).toEqual([
      'overcommit vm:a',
    ]);
  });

  it('falls back to a host still to be rebooted, at the cost of an extra migration, when fresh hosts are full', () => {
    const snapshot = pool('h1', [
      { name: 'h1', totalGiB: 16, vms: { a: 4 } },
      { name: 'h2', totalGiB: 64, vms: { b: 12, c: 12 } },
      { name: 'h3', totalGiB: 64, vms: { d: 4 } },
    ]);
    const plan = planOf(snapshot);
    expect(moves(plan)).toEqual(['h1: a->h3', 'h2: b->h1 c->h3', 'h3: c->h2 a->h2 d->h2']);
    expect(plan.totalMigrations).toBe(plan.optimalMigrations + 1);
  });

  it('never sends VMs to disabled or dead hosts until they have been rebooted', () => {
    const snapshot = pool('h1', [
      { name: 'h1', totalGiB: 64, vms: { a: 8 } },
      { name: 'h2', totalGiB: 64, enabled: false },
      { name: 'h3', totalGiB: 64, live: false },
      { name: 'h4', totalGiB: 64, vms: { b: 8 } },
    ]);
    const plan = planOf(snapshot);
    expect(moves(plan)).toEqual(['h1: a->h4', 'h2: ', 'h3: ', 'h4: a->h3 b->h3']);
  });

  it('refuses inconsistent input with a clear message', () => {
    const good = pool('h1', [
      { name: 'h1', totalGiB: 64, vms: { a: 8 } },
      { name: 'h2', totalGiB: 64 },
    ]);
    const invalid = (snapshot: PoolSnapshot) => refusalOf(snapshot);
    expect(invalid({ ...good, masterId: 'h:nope' })).toEqual({
      kind: 'invalid',
      message: "The pool master h:nope is not among the pool's hosts",
    });
    expect(invalid({ ...good, vms: [{ id: 'vm:x', name: 'x', memory: GiB, residentOn: 'h:gone' }] })).toEqual(
      {
        kind: 'invalid',
        message: 'VM x (vm:x) runs on unknown host h:gone',
      },
    );
    expect(invalid({ ...good, ignoredHostIds: ['h:h9'] })).toMatchObject({ kind: 'invalid' });
    expect(invalid({ ...good, blockers: [{ vmId: 'vm:ghost', reason: ['X'] }] })).toMatchObject({
      kind: 'invalid',
    });
    expect(invalid({ ...good, hosts: [...good.hosts, good.hosts[0] as SnapshotHost] })).toMatchObject({
      kind: 'invalid',
    });
    expect(
      invalid({ ...good, vms: [{ id: 'vm:x', name: 'x', memory: Number.NaN, residentOn: 'h:h1' }] }),
    ).toMatchObject({ kind: 'invalid' });
  });

  it('plans nothing when every host is done or ignored', () => {
    const snapshot = pool(
      'h1',
      [
        { name: 'h1', totalGiB: 64, vms: { a: 8 } },
        { name: 'h2', totalGiB: 64 },
      ],
      {
        doneHostIds: ['h:h1'],
        ignoredHostIds: ['h:h2'],
      },
    );
    expect(planOf(snapshot)).toEqual({
      order: [],
      steps: [],
      totalMigrations: 0,
      optimalMigrations: 0,
      memoryMoved: 0,
    });
  });

  it('plans a 32-host pool with 40 VMs per host and reaches the optimum', () => {
    const sizes = [0.5, 1, 2, 4, 8];
    const specs: HostSpec[] = Array.from({ length: 32 }, (_, h) => ({
      name: `xen${h + 1}`,
      totalGiB: 512,
      vms: Object.fromEntries(
        Array.from({ length: 40 }, (_, v) => [`i-${h + 1}-${v}`, sizes[(h + v) % sizes.length] as number]),
      ),
    }));
    const plan = planOf(pool('xen7', specs));
    expect(plan.steps).toHaveLength(32);
    expect(plan.totalMigrations).toBe(32 * 40 + 40);
    expect(plan.totalMigrations).toBe(plan.optimalMigrations);
  });
});

describe('planHostEvacuation', () => {
  const snapshot = pool(
    'h1',
    [
      { name: 'h1', totalGiB: 64, vms: { x: 4 } },
      { name: 'h2', totalGiB: 256 },
      { name: 'h3', totalGiB: 64, vms: { a: 16, b: 8 } },
      { name: 'h4', totalGiB: 64, vms: { c: 8 } },
    ],
    { doneHostIds: [] },
  );

  it('sends VMs to the host rebooted just before, even when another fresh host has more room', () => {
    const result = planHostEvacuation(snapshot, 'h:h3', ['h:h1', 'h:h2']);
    expect(result).toEqual({
      ok: true,
      step: {
        hostId: 'h:h3',
        hostName: 'h3',
        migrations: [
          { vmId: 'vm:a', vmName: 'a', memory: 16 * GiB, from: 'h:h3', to: 'h:h1' },
          { vmId: 'vm:b', vmName: 'b', memory: 8 * GiB, from: 'h:h3', to: 'h:h1' },
        ],
      },
    });
  });

  it('uses the other fresh hosts, roomiest first, when the host just before is full', () => {
    const result = planHostEvacuation(snapshot, 'h:h3', ['h:h4', 'h:h2', 'h:h1']);
    expect(result.ok && result.step.migrations.map((m) => m.to)).toEqual(['h:h4', 'h:h4']);
    const tight = planHostEvacuation(
      {
        ...snapshot,
        hosts: snapshot.hosts.map((h) => (h.id === 'h:h4' ? { ...h, memoryFree: 20 * GiB } : h)),
      },
      'h:h3',
      ['h:h4', 'h:h1', 'h:h2'],
    );
    expect(tight.ok && tight.step.migrations.map((m) => m.to)).toEqual(['h:h4', 'h:h2']);
  });

  it('refuses an ignored or unknown host, and a host whose VMs do not fit', () => {
    expect(planHostEvacuation({ ...snapshot, ignoredHostIds: ['h:h3'] }, 'h:h3', [])).toMatchObject({
      ok: false,
      refusal: { kind: 'invalid' },
    });
    expect(planHostEvacuation(snapshot, 'h:h9', [])).toMatchObject({
      ok: false,
      refusal: { kind: 'invalid' },
    });
    const full = {
      ...snapshot,
      hosts: snapshot.hosts.map((h) => ({ ...h, memoryFree: h.id === 'h:h3' ? h.memoryFree : 10 * GiB })),
    };
    expect(planHostEvacuation(full, 'h:h3', ['h:h1'])).toMatchObject({
      ok: false,
      refusal: {
        kind: 'capacity',
        hostId: 'h:h3',
        message: 'Not enough capacity to empty h3: 1 VM (a 16.0 GiB) does not fit; 6.0 GiB short',
      },
    });
  });
});

function migration(vm: string, sizeGiB: number, from: string, to: string) {
  return { vmId: `vm:${vm}`, vmName: vm, memory: sizeGiB * GiB, from: `h:${from}`, to: `h:${to}` };
}

describe('replayPlan', () => {
  const snapshot = pool(
    'h1',
    [
      { name: 'h1', totalGiB: 32, vms: { a: 8 } },
      { name: 'h2', totalGiB: 32, vms: { b: 8 } },
      { name: 'h3', totalGiB: 32, vms: { c: 20 } },
      { name: 'h4', totalGiB: 64, enabled: false },
      { name: 'h5', totalGiB: 64, live: false },
      { name: 'h6', totalGiB: 64 },
    ],
    { ignoredHostIds: ['h:h6'], doneHostIds: ['h:h4', 'h:h5'] },
  );
  const step = (host: string, ...migrations: ReturnType<typeof migration>[]): HostStep => ({
    hostId: `h:${host}`,
    hostName: host,
    migrations,
  });
  const handPlan = (...steps: HostStep[]): RollingPlan => {
    const all = steps.flatMap((s) => s.migrations);
    return {
      order: ['h:h1', 'h:h2', 'h:h3'],
      steps,
      totalMigrations: all.length,
      optimalMigrations: 4,
      memoryMoved: all.reduce((sum, m) => sum + m.memory, 0),
    };
  };
  const first = step('h1', migration('a', 8, 'h1', 'h2'));
  const second = step('h2', migration('b', 8, 'h2', 'h1'), migration('a', 8, 'h2', 'h1'));
  /** A valid plan whose last step sends c where asked. */
  const cTo = (host: string) => handPlan(first, second, step('h3', migration('c', 20, 'h3', host)));
  const kinds = (plan: RollingPlan, on: PoolSnapshot = snapshot) =>
    replayPlan(on, plan).violations.map((v) => v.kind);

  it("accepts the planner's plan and a valid hand-made one, and reports where every VM ends up", () => {
    expect(replayPlan(snapshot, planOf(snapshot)).violations).toEqual([]);
    const report = replayPlan(snapshot, cTo('h2'));
    expect(report.violations).toEqual([]);
    expect(report.residency).toEqual({ 'vm:a': 'h:h1', 'vm:b': 'h:h1', 'vm:c': 'h:h2' });
    expect(report.migrations).toBe(4);
  });

  it('reports a VM sent to the host being emptied, an ignored, a disabled, a dead or an unknown host', () => {
    expect(kinds(cTo('h3'))).toEqual(['destination-self', 'vm-left-on-host']);
    expect(kinds(cTo('h6'))).toEqual(['destination-ignored']);
    expect(kinds(cTo('h4'))).toEqual(['destination-disabled']);
    expect(kinds(cTo('h5'))).toEqual(['destination-not-live']);
    expect(kinds(cTo('nowhere'))).toEqual(['vm-not-placed', 'vm-left-on-host']);
  });

  it('reports overcommit, a VM left behind, a wrong source and a blocked VM moved', () => {
    // h1 holds a and b (16 GiB of 32) when c (20 GiB) arrives.
    const over = replayPlan(snapshot, cTo('h1')).violations;
    expect(over).toEqual([
      { kind: 'overcommit', step: 2, hostId: 'h:h3', vmId: 'vm:c', message: 'c overcommits h1 by 4.0 GiB' },
    ]);
    expect(kinds(handPlan(first, second, step('h3')))).toEqual(['vm-left-on-host']);
    expect(kinds(handPlan(first, second, step('h3', migration('b', 8, 'h3', 'h2'))))).toEqual([
      'wrong-source',
      'vm-left-on-host',
    ]);
    const blocked = { ...snapshot, blockers: [{ vmId: 'vm:a', reason: ['VM_HAS_VGPU'] }] };
    expect(kinds(cTo('h2'), blocked)).toEqual(['blocked-vm-moved', 'blocked-vm-moved']);
  });

  it('reports a wrong order, a host rebooted twice, a host never rebooted and wrong totals', () => {
    const last = step('h3', migration('c', 20, 'h3', 'h2'));
    expect(kinds(handPlan(second, first, last))).toContain('wrong-order');
    expect(kinds(handPlan(first, second, last, step('h3')))).toEqual(['wrong-order', 'host-rebooted-twice']);
    expect(kinds(handPlan(first, second))).toEqual(['host-not-rebooted']);
    expect(kinds({ ...cTo('h2'), order: ['h:h3', 'h:h2', 'h:h1'] })).toEqual(['wrong-order']);
    expect(kinds({ ...cTo('h2'), totalMigrations: 3 })).toEqual(['wrong-totals']);
    expect(kinds(handPlan(first, second, last, step('h6')))).toEqual([
      'wrong-order',
      'ignored-host-rebooted',
    ]);
    expect(kinds(handPlan(first, second, last, step('h4')))).toEqual(['wrong-order', 'done-host-rebooted']);
  });
});

describe('formatBytes', () => {
  it('prints GiB with one decimal, MiB under 1 GiB and bytes under 1 MiB', () => {
    expect(formatBytes(8 * GiB)).toBe('8.0 GiB');
    expect(formatBytes(3.5 * GiB)).toBe('3.5 GiB');
    expect(formatBytes(1536 * GiB)).toBe('1536.0 GiB');
    expect(formatBytes(512 * MiB)).toBe('512 MiB');
    expect(formatBytes(1023.9 * MiB)).toBe('1.0 GiB');
    expect(formatBytes(1000)).toBe('1000 B');
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(-2 * GiB)).toBe('-2.0 GiB');
  });
});
