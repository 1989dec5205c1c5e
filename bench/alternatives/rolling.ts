/**
 * The frame every alternative shares: the same host order as the engine (pool master first, then
 * by name), each host emptied onto the others while it is disabled, then rebooted and enabled
 * again. Only the choice of destinations differs, so `replayPlan` judges all of them alike.
 */
import {
  countOptimalMigrations,
  type HostStep,
  type Migration,
  type RollingPlan,
} from '../../src/engine/planner.js';
import {
  type PoolSnapshot,
  rollingOrder,
  type SnapshotHost,
  type SnapshotVm,
} from '../../src/engine/snapshot.js';
import { MemoryLedger } from './memory-ledger.js';

export type Placement =
  | { ok: true; migrations: Migration[] }
  | { ok: false; vm: SnapshotVm; message: string };

/** Empties `leaving` onto `destinations` (enabled hosts other than it), moving VMs in `ledger`. */
export type HostEvacuator = (
  ledger: MemoryLedger,
  leaving: SnapshotHost,
  destinations: SnapshotHost[],
) => Placement;

export type AlternativeResult =
  | {
      ok: true;
      plan: RollingPlan;
      /** Moves after the last reboot (Xen Orchestra's migrate-back), judged separately. */
      returnMoves?: Migration[];
      /** VMs that could not be moved back home. */
      notReturned?: number;
    }
  | { ok: false; hostName: string; message: string };

export interface Planner {
  key: string;
  name: string;
  plan(snapshot: PoolSnapshot, options: { seed: number }): AlternativeResult;
}

export type RollingOutcome =
  | { ok: true; plan: RollingPlan; ledger: MemoryLedger }
  | { ok: false; hostName: string; message: string };

/** Plans every host with `evacuate`; the ledger shows where the VMs are after the last step. */
export function planWith(snapshot: PoolSnapshot, evacuate: HostEvacuator): RollingOutcome {
  const ledger = new MemoryLedger(snapshot);
  const order = rollingOrder(snapshot);
  const ignored = new Set(snapshot.ignoredHostIds);
  const rebooted = new Set<string>();
  const steps: HostStep[] = [];
  for (const host of order) {
    const destinations = ledger.hosts.filter(
      (h) => h.id !== host.id && !ignored.has(h.id) && (rebooted.has(h.id) || (h.enabled && h.live)),
    );
    const placement = evacuate(ledger, host, destinations);
    if (!placement.ok) return { ok: false, hostName: host.name, message: placement.message };
    steps.push({ hostId: host.id, hostName: host.name, migrations: placement.migrations });
    rebooted.add(host.id);
  }
  return { ok: true, plan: rollingPlan(snapshot, order, steps), ledger };
}

export function rollingPlan(snapshot: PoolSnapshot, order: SnapshotHost[], steps: HostStep[]): RollingPlan {
  const migrations = steps.flatMap((step) => step.migrations);
  return {
    order: order.map((host) => host.id),
    steps,
    totalMigrations: migrations.length,
    optimalMigrations: countOptimalMigrations(snapshot, order),
    memoryMoved: migrations.reduce((sum, m) => sum + m.memory, 0),
  };
}

export function withoutLedger(outcome: RollingOutcome): AlternativeResult {
  return outcome.ok ? { ok: true, plan: outcome.plan } : outcome;
}
