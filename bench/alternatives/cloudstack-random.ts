/**
 * CloudStack-like placement (its default `vm.allocation.algorithm=random`): each VM, in listing
 * order, to a host chosen at random among the enabled hosts it fits on. A VM that fits nowhere
 * is where CloudStack would stop it (downtime): counted as a refusal.
 */
import { seededRandom } from '../../lab/pool-generator.js';
import { formatBytes } from '../../src/engine/format.js';
import type { Migration } from '../../src/engine/planner.js';
import { type HostEvacuator, type Planner, planWith, withoutLedger } from './rolling.js';

export function evacuateRandomFit(random: () => number): HostEvacuator {
  return (ledger, leaving, destinations) => {
    const migrations: Migration[] = [];
    for (const vm of ledger.residents(leaving.id)) {
      const fitting = destinations.filter((host) => ledger.free(host.id) >= vm.memory);
      const chosen = fitting[Math.floor(random() * fitting.length)];
      if (!chosen) {
        return {
          ok: false,
          vm,
          message: `no host has ${formatBytes(vm.memory)} free for ${vm.name}: CloudStack would stop it`,
        };
      }
      migrations.push(ledger.move(vm, chosen.id));
    }
    return { ok: true, migrations };
  };
}

export const cloudstackRandomPlanner: Planner = {
  key: 'cloudstack-random',
  name: 'CloudStack-like random fit',
  plan: (snapshot, { seed }) => withoutLedger(planWith(snapshot, evacuateRandomFit(seededRandom(seed)))),
};
