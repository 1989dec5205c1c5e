/**
 * Xen Orchestra's rolling pool reboot (peers.md section 1.3, with the migrate-back of PR #10295):
 * each host emptied by `host.evacuate` (XAPI's bin-pack), and once every host is rebooted every VM
 * migrated back to the host it started on, in reverse reboot order, in passes while any VM still
 * moves; a VM that cannot go home stays where it is (reported, not fatal). Both phases count.
 */
import type { Migration } from '../../src/engine/planner.js';
import { type PoolSnapshot, rollingOrder } from '../../src/engine/snapshot.js';
import type { MemoryLedger } from './memory-ledger.js';
import { type AlternativeResult, type Planner, planWith } from './rolling.js';
import { evacuateBiggestFitDecreasing } from './xapi-binpack.js';

export function planXenOrchestra(snapshot: PoolSnapshot): AlternativeResult {
  const evacuation = planWith(snapshot, evacuateBiggestFitDecreasing);
  if (!evacuation.ok) return evacuation;
  const { moves, notReturned } = migrateBack(snapshot, evacuation.ledger);
  return { ok: true, plan: evacuation.plan, returnMoves: moves, notReturned };
}

function migrateBack(
  snapshot: PoolSnapshot,
  ledger: MemoryLedger,
): { moves: Migration[]; notReturned: number } {
  const homes = [...rollingOrder(snapshot)].reverse();
  const moves: Migration[] = [];
  for (;;) {
    let progress = 0;
    for (const home of homes) {
      for (const vm of snapshot.vms) {
        if (vm.residentOn !== home.id || ledger.residenceOf(vm.id) === home.id) continue;
        if (ledger.free(home.id) < vm.memory) continue;
        moves.push(ledger.move(vm, home.id));
        progress++;
      }
    }
    if (progress === 0) break;
  }
  const notReturned = snapshot.vms.filter((vm) => ledger.residenceOf(vm.id) !== vm.residentOn).length;
  return { moves, notReturned };
}

export const xenOrchestraPlanner: Planner = {
  key: 'xen-orchestra',
  name: 'Xen Orchestra (evacuate + migrate back)',
  plan: (snapshot) => planXenOrchestra(snapshot),
};
