/**
 * The seed tool's planner (cloudstackOps `xenserver_parallel_evacuate.py`, seed-cloudstackops.md
 * section 3): the VMs of the host in `xe vm-list` order, unsorted; each to the enabled host with
 * the most free memory right now, which must have strictly more free than the VM needs; if one VM
 * fits nowhere the whole plan is abandoned ("N+1 rule is not met").
 */
import { formatBytes } from '../../src/engine/format.js';
import type { Migration } from '../../src/engine/planner.js';
import { type HostEvacuator, type Planner, planWith, withoutLedger } from './rolling.js';

export const evacuateMostFree: HostEvacuator = (ledger, leaving, destinations) => {
  const migrations: Migration[] = [];
  for (const vm of ledger.residents(leaving.id)) {
    // A stable sort by free memory, most first: equal hosts stay in listing order, as Python's sort.
    const [roomiest] = [...destinations].sort((a, b) => ledger.free(b.id) - ledger.free(a.id));
    if (!roomiest || !(ledger.free(roomiest.id) > vm.memory)) {
      return {
        ok: false,
        vm,
        message: `not enough memory (need ${formatBytes(vm.memory)}) on any hypervisor to migrate ${vm.name}: N+1 rule is not met`,
      };
    }
    migrations.push(ledger.move(vm, roomiest.id));
  }
  return { ok: true, migrations };
};

export const seedGreedyPlanner: Planner = {
  key: 'seed-greedy',
  name: 'seed greedy (most free memory)',
  plan: (snapshot) => withoutLedger(planWith(snapshot, evacuateMostFree)),
};
