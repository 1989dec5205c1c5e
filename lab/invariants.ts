/**
 * Judges a run by what the lab saw, never by what the bot says: the safety invariants of
 * DESIGN.md section 3 that the lab can observe (I1, I2, I3, I6) and "no VM lost".
 */
import type { Operation } from './operation-log.js';
import type { PoolModel, RestorableState } from './pool-model.js';

export interface Baseline {
  restorable: RestorableState;
  managedState: string;
  runningVms: string[];
}

export interface InvariantReport {
  ok: boolean;
  violations: string[];
  reboots: Record<string, number>;
  migrations: number;
  failedMigrations: number;
  maxConcurrentMigrations: number;
}

export function captureBaseline(model: PoolModel, managedState: string): Baseline {
  return {
    restorable: model.restorableState(),
    managedState,
    runningVms: model
      .guestVms()
      .filter((vm) => vm.powerState === 'Running')
      .map((vm) => vm.name)
      .sort(),
  };
}

export interface CheckOptions {
  /** Compare HA, auto_poweron and managed state with the baseline (I6): after a finished or aborted run. */
  expectRestored: boolean;
  managedState: string;
}

export function checkInvariants(
  operations: readonly Operation[],
  model: PoolModel,
  baseline: Baseline,
  options: CheckOptions,
): InvariantReport {
  const violations: string[] = [];
  const outOfService = new Set<string>();
  const reboots: Record<string, number> = {};
  let lastRebooted: string | undefined;
  const cameUp = new Set<string>();
  const sshCheckedAfterBoot = new Set<string>();
  const sshUp = new Set<string>();

  for (const op of operations) {
    const host = op.host ?? '?';
    switch (op.kind) {
      case 'host.disabled': {
        if (lastRebooted && lastRebooted !== host) {
          if (!cameUp.has(lastRebooted)) {
            violations.push(`I3: ${host} was disabled at +${op.at} ms before ${lastRebooted} came back`);
          } else if (!sshCheckedAfterBoot.has(lastRebooted)) {
            violations.push(
              `I3: ${host} was disabled at +${op.at} ms before SSH on ${lastRebooted} was checked`,
            );
          }
        }
        addOutOfService(host, op);
        break;
      }
      case 'host.reboot_requested':
        addOutOfService(host, op);
        break;
      case 'host.went_down': {
        const resident = (op.detail?.residentGuestVms as string[] | undefined) ?? [];
        if (resident.length > 0) {
          violations.push(`I1: ${host} went down at +${op.at} ms with VMs running: ${resident.join(', ')}`);
        }
        reboots[host] = (reboots[host] ?? 0) + 1;
        lastRebooted = host;
        cameUp.delete(host);
        sshUp.delete(host);
        sshCheckedAfterBoot.delete(host);
        addOutOfService(host, op);
        break;
      }
      case 'host.ssh_up':
        sshUp.add(host);
        break;
      case 'ssh.auth':
        if (op.detail?.ok === true && sshUp.has(host)) sshCheckedAfterBoot.add(host);
        break;
      case 'host.came_up':
        cameUp.add(host);
        outOfService.delete(host);
        break;
      case 'host.enabled':
        outOfService.delete(host);
        break;
      case 'vm.lost':
        violations.push(`VM lost: ${op.vm} (${String(op.detail?.reason ?? 'unknown')}) at +${op.at} ms`);
        break;
    }
  }

  function addOutOfService(host: string, op: Operation) {
    outOfService.add(host);
    if (outOfService.size > 1) {
      violations.push(
        `I2: ${[...outOfService].join(' and ')} out of service together at +${op.at} ms (${op.kind})`,
      );
    }
  }

  const running = new Set(
    model
      .guestVms()
      .filter((vm) => vm.powerState === 'Running' && model.hostByRef(vm.residentOn)?.live)
      .map((vm) => vm.name),
  );
  for (const name of baseline.runningVms) {
    if (!running.has(name))
      violations.push(`VM ${name} was running before and is not running on a live host now`);
  }

  if (options.expectRestored) {
    const now = model.restorableState();
    const before = baseline.restorable;
    if (JSON.stringify(now) !== JSON.stringify(before)) {
      violations.push(
        `I6: pool state not restored: before ${JSON.stringify(before)}, now ${JSON.stringify(now)}`,
      );
    }
    if (options.managedState !== baseline.managedState) {
      violations.push(
        `I6: CloudStack managed state is ${options.managedState}, was ${baseline.managedState}`,
      );
    }
    const disabled = model.hosts.filter((h) => !h.enabled).map((h) => h.name);
    if (disabled.length > 0) violations.push(`I6: hosts left disabled: ${disabled.join(', ')}`);
  }

  const migrated = operations.filter((op) => op.kind === 'vm.migrated').length;
  const failed = operations.filter((op) => op.kind === 'vm.migration_failed').length;
  return {
    ok: violations.length === 0,
    violations,
    reboots,
    migrations: migrated,
    failedMigrations: failed,
    maxConcurrentMigrations: model.migrationConcurrency().maxTotal,
  };
}
