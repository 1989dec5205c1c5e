/**
 * The pools every planner is measured on: 4 to 32 identical hosts, 10 to 40 VMs per host of mixed
 * sizes (cloud flavours from a quarter to four times the pool's typical VM), loaded from 50% of the
 * N+1 capacity up to its limit, each from a seed so every run sees the same pools.
 */
import { GiB, MiB, seededRandom } from '../lab/pool-generator.js';
import {
  type PoolSnapshot,
  rollingOrder,
  type SnapshotHost,
  type SnapshotVm,
} from '../src/engine/snapshot.js';

/** Guest memory of one host: a 256 GiB server with 8 GiB kept by the control domain. */
export const HOST_GUEST_MEMORY = 248 * GiB;

/** Flavour sizes relative to the pool's typical VM, and how often each is drawn. */
const FLAVOURS: ReadonlyArray<{ factor: number; weight: number }> = [
  { factor: 0.25, weight: 0.2 },
  { factor: 0.5, weight: 0.3 },
  { factor: 1, weight: 0.25 },
  { factor: 2, weight: 0.15 },
  { factor: 4, weight: 0.1 },
];
const GRANULE = 256 * MiB;

export interface PoolSpec {
  hosts: number;
  /** Total VM memory as a share of the N+1 capacity: (hosts - 1) hosts' worth of guest memory. */
  load: number;
  /** Average VMs per host; each host gets 75% to 125% of it, within 10 to 40. */
  vmsPerHost: number;
  seed: number;
}

export interface BenchPool {
  id: string;
  spec: PoolSpec;
  snapshot: PoolSnapshot;
  /** The load actually reached: VM sizes are drawn, so it lands near the nominal one. */
  actualLoad: number;
  vms: number;
}

export const FULL_GRID = {
  hosts: [4, 8, 16, 32],
  loads: [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1],
  vmsPerHost: [10, 25, 40],
  seeds: [1, 2],
};

export const QUICK_GRID = {
  hosts: [4, 8],
  loads: [0.6, 0.95],
  vmsPerHost: [10, 25],
  seeds: [1],
};

export function benchPools(grid: typeof FULL_GRID): BenchPool[] {
  const pools: BenchPool[] = [];
  for (const hosts of grid.hosts)
    for (const load of grid.loads)
      for (const vmsPerHost of grid.vmsPerHost)
        for (const seed of grid.seeds) pools.push(generatePool({ hosts, load, vmsPerHost, seed }));
  return pools;
}

export function generatePool(spec: PoolSpec): BenchPool {
  const random = seededRandom(
    spec.seed * 1_000_003 + spec.hosts * 1_009 + spec.vmsPerHost * 31 + Math.round(spec.load * 1e4),
  );
  const capacity = HOST_GUEST_MEMORY;
  const target = spec.load * (spec.hosts - 1) * capacity;
  // Each host gets its own count and mix; sizes are then scaled together so the pool's total lands
  // on the nominal load (hosts differ, the pool as a whole is what the load says).
  const draws = Array.from({ length: spec.hosts }, () => {
    const count = Math.min(40, Math.max(10, Math.round(spec.vmsPerHost * (0.75 + random() * 0.5))));
    const scale = spec.vmsPerHost / count;
    return Array.from({ length: count }, () => scale * drawFactor(random));
  });
  const unit = target / draws.flat().reduce((total, factor) => total + factor, 0);

  const hostIds = draws.map((_, h) => `host-${spec.hosts}-${h + 1}`);
  const used = draws.map(() => 0);
  const vms: SnapshotVm[] = [];
  const overflow: SnapshotVm[] = [];
  for (const [h, factors] of draws.entries()) {
    for (const [k, factor] of factors.entries()) {
      const vm = { id: `vm-${h + 1}-${k + 1}`, name: `i-${h + 1}-${k + 1}-VM`, memory: 0, residentOn: '' };
      vm.memory = roundToGranule(unit * factor);
      // No host starts over its own capacity (a real pool cannot be in that state): what does not
      // fit on its host goes where there is most room, as a scheduler would have put it.
      if ((used[h] as number) + vm.memory > capacity) {
        overflow.push(vm);
        continue;
      }
      used[h] = (used[h] as number) + vm.memory;
      vms.push({ ...vm, residentOn: hostIds[h] as string });
    }
  }
  for (const vm of overflow) {
    const roomiest = used.indexOf(Math.min(...used));
    if ((used[roomiest] as number) + vm.memory > capacity) continue;
    used[roomiest] = (used[roomiest] as number) + vm.memory;
    vms.push({ ...vm, residentOn: hostIds[roomiest] as string });
  }
  const hosts: SnapshotHost[] = hostIds.map((id, h) => ({
    id,
    name: `host${h + 1}`,
    memoryTotal: capacity,
    memoryFree: capacity - (used[h] as number),
    enabled: true,
    live: true,
  }));
  const master = hosts[Math.floor(random() * hosts.length)] as SnapshotHost;
  const total = vms.reduce((sum, vm) => sum + vm.memory, 0);
  return {
    id: `${spec.hosts}h-load${Math.round(spec.load * 100)}-${spec.vmsPerHost}vph-s${spec.seed}`,
    spec,
    snapshot: { hosts, vms, masterId: master.id, ignoredHostIds: [], blockers: [] },
    actualLoad: total / ((spec.hosts - 1) * capacity),
    vms: vms.length,
  };
}

function drawFactor(random: () => number): number {
  let draw = random();
  for (const flavour of FLAVOURS) {
    draw -= flavour.weight;
    if (draw < 0) return flavour.factor;
  }
  return FLAVOURS.at(-1)?.factor ?? 1;
}

function roundToGranule(bytes: number): number {
  return Math.max(2 * GRANULE, Math.round(bytes / GRANULE) * GRANULE);
}

/**
 * True when no plan can exist with the engine's order (pool master first), for either of two
 * simple reasons: with some host out of service the VMs exceed the others' memory; or the first
 * host's largest VM fits on no other host as the pool stands (nothing has moved yet, so nothing can
 * have made room). A pool passing both may still not pack: these are proofs, not a search.
 */
export function provablyInfeasible(snapshot: PoolSnapshot): boolean {
  const total = snapshot.vms.reduce((sum, vm) => sum + vm.memory, 0);
  const capacity = snapshot.hosts.reduce((sum, host) => sum + host.memoryTotal, 0);
  if (snapshot.hosts.some((host) => total > capacity - host.memoryTotal)) return true;
  const [first] = rollingOrder(snapshot);
  if (!first) return false;
  const largest = Math.max(
    0,
    ...snapshot.vms.filter((vm) => vm.residentOn === first.id).map((vm) => vm.memory),
  );
  const roomiest = Math.max(0, ...snapshot.hosts.filter((h) => h.id !== first.id).map((h) => h.memoryFree));
  return largest > roomiest;
}
