/**
 * Empties one host: its VMs live-migrate per plan through `VM.pool_migrate`, at most `threads` at
 * once, largest first. A failed migration is retried once, on another destination when one fits.
 * Abort stops new migrations at once; migrations in flight finish (a live migration cannot be
 * stopped half-way safely).
 */
import pLimit from 'p-limit';
import type { EngineEvent } from './events.js';
import { errorDetail } from './outcome.js';
import type { Migration } from './planner.js';
import type { HypervisorPool, PoolState } from './pool-state.js';

export interface EvacuationContext {
  xapi: HypervisorPool;
  state: PoolState;
  threads: number;
  migrationTimeoutMs: number;
  /** Host uuids that may receive VMs, in order of preference (rebooted hosts first). */
  candidateDestinations: string[];
  abortRequested(): boolean;
  emit(event: EngineEvent): void;
  signal?: AbortSignal;
}

export interface EvacuationReport {
  moved: number;
  failures: Array<{ vm: string; error: string[] }>;
  /** VMs XAPI said were busy with another operation (e.g. a migration a stopped run left going). */
  busy: string[];
  skippedForAbort: number;
}

/** XAPI's answer for a VM in the middle of another operation: wait for it rather than go elsewhere. */
const VM_BUSY = 'OTHER_OPERATION_IN_PROGRESS';

export async function evacuate(
  context: EvacuationContext,
  migrations: Migration[],
): Promise<EvacuationReport> {
  const limit = pLimit(Math.max(1, context.threads));
  const report: EvacuationReport = { moved: 0, failures: [], busy: [], skippedForAbort: 0 };
  const ordered = [...migrations].sort((a, b) => b.memory - a.memory || a.vmName.localeCompare(b.vmName));
  await Promise.all(
    ordered.map((migration) =>
      limit(async () => {
        if (context.abortRequested()) {
          report.skippedForAbort++;
          return;
        }
        const first = await migrateOnce(context, migration, migration.to, 1);
        if (first.ok) {
          report.moved++;
          return;
        }
        if (first.error[0] === VM_BUSY) {
          report.busy.push(migration.vmName);
          return;
        }
        if (context.signal?.aborted) {
          report.failures.push({ vm: migration.vmName, error: first.error });
          return;
        }
        const retryTo = (await otherDestination(context, migration)) ?? migration.to;
        const second = await migrateOnce(context, migration, retryTo, 2);
        if (second.ok) report.moved++;
        // The first attempt may still be going (its task was lost, its outcome unknown): wait for it.
        else if (second.error[0] === VM_BUSY) report.busy.push(migration.vmName);
        else report.failures.push({ vm: migration.vmName, error: second.error });
      }),
    ),
  );
  return report;
}

async function migrateOnce(
  context: EvacuationContext,
  migration: Migration,
  destinationUuid: string,
  attempt: number,
): Promise<{ ok: true } | { ok: false; error: string[] }> {
  const { state } = context;
  const vm = state.vmByUuid.get(migration.vmId);
  const source = state.hostByUuid.get(migration.from);
  const destination = state.hostByUuid.get(destinationUuid);
  const names = {
    vm: migration.vmName,
    from: source?.nameLabel ?? migration.from,
    to: destination?.nameLabel ?? destinationUuid,
  };
  if (!vm || !destination) {
    const error = ['HANDLE_INVALID', vm ? 'host' : 'VM', vm ? destinationUuid : migration.vmId];
    context.emit({
      type: 'migration_failed',
      ...names,
      seconds: 0,
      attempt,
      error,
      willRetry: attempt === 1,
    });
    return { ok: false, error };
  }
  context.emit({ type: 'migration_started', ...names, memory: migration.memory, attempt });
  const startedAt = Date.now();
  try {
    await context.xapi.poolMigrate(vm.ref, destination.ref, {
      timeoutMs: context.migrationTimeoutMs,
      signal: context.signal,
    });
    context.emit({ type: 'migration_finished', ...names, seconds: seconds(startedAt), attempt });
    return { ok: true };
  } catch (error) {
    const detail = errorDetail(error);
    context.emit({
      type: 'migration_failed',
      ...names,
      seconds: seconds(startedAt),
      attempt,
      error: detail,
      willRetry: attempt === 1,
    });
    return { ok: false, error: detail };
  }
}

/** Another host the VM fits on right now (live free memory), preferring rebooted hosts. */
async function otherDestination(
  context: EvacuationContext,
  migration: Migration,
): Promise<string | undefined> {
  for (const uuid of context.candidateDestinations) {
    if (uuid === migration.to || uuid === migration.from) continue;
    const host = context.state.hostByUuid.get(uuid);
    if (!host) continue;
    try {
      const free = await context.xapi.computeFreeMemory(host.ref);
      if (free >= migration.memory) return uuid;
    } catch {
      // A host we cannot ask is not a destination we want.
    }
  }
  return undefined;
}

function seconds(since: number): number {
  return Math.round((Date.now() - since) / 100) / 10;
}
