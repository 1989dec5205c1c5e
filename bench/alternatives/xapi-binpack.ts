/**
 * XAPI's `host.evacuate` placement (xen-api `Binpack.biggest_fit_decreasing`, used by
 * `compute_evacuation_plan` through the HA planner): VMs largest first, each into the host with the
 * most free memory, the hosts kept sorted as memory is taken; a VM that does not fit there is left
 * out, and a plan with any VM left out is refused before anything moves (HOST_NOT_ENOUGH_FREE_MEMORY).
 */
import { formatBytes } from '../../src/engine/format.js';
import type { Migration } from '../../src/engine/planner.js';
import type { SnapshotHost, SnapshotVm } from '../../src/engine/snapshot.js';
import type { MemoryLedger } from './memory-ledger.js';
import { type HostEvacuator, type Planner, planWith, withoutLedger } from './rolling.js';

export const evacuateBiggestFitDecreasing: HostEvacuator = (ledger, leaving, destinations) => {
  // OCaml's List.sort is stable: equal VMs keep listing order, equal hosts keep host order.
  const vms = [...ledger.residents(leaving.id)].sort((a, b) => b.memory - a.memory);
  let bins = [...destinations].sort((a, b) => ledger.free(b.id) - ledger.free(a.id));
  const migrations: Migration[] = [];
  const leftOut: SnapshotVm[] = [];
  for (const vm of vms) {
    const [first, ...rest] = bins;
    if (!first || ledger.free(first.id) - vm.memory < 0) {
      leftOut.push(vm);
      continue;
    }
    migrations.push(ledger.move(vm, first.id));
    bins = reinsert(ledger, first, rest);
  }
  const [firstLeftOut] = leftOut;
  if (firstLeftOut) {
    const names = leftOut.map((vm) => `${vm.name} (${formatBytes(vm.memory)})`).join(', ');
    return { ok: false, vm: firstLeftOut, message: `HOST_NOT_ENOUGH_FREE_MEMORY: ${names} fit nowhere` };
  }
  return { ok: true, migrations };
};

/** `Binpack.insert`: the host goes back before the first host with no more free memory than it. */
function reinsert(ledger: MemoryLedger, host: SnapshotHost, sorted: SnapshotHost[]): SnapshotHost[] {
  const free = ledger.free(host.id);
  const at = sorted.findIndex((other) => ledger.free(other.id) <= free);
  return at === -1 ? [...sorted, host] : [...sorted.slice(0, at), host, ...sorted.slice(at)];
}

export const xapiBinpackPlanner: Planner = {
  key: 'xapi-evacuate',
  name: 'XAPI host.evacuate (bin-pack)',
  plan: (snapshot) => withoutLedger(planWith(snapshot, evacuateBiggestFitDecreasing)),
};
