/**
 * The soak's fault catalog (bench/soak.ts): each fault of the matrix armed on a lab cluster for one
 * run, with what an operator does to put things right afterwards and which endings it allows.
 */
import type { Lab } from '../lab/lab.js';
import type { Operation } from '../lab/operation-log.js';
import { GiB } from '../lab/pool-generator.js';
import { NULL_REF } from '../lab/pool-model.js';
import { replaceKnownHost, scanHostKey } from '../test/support/fault-checks.js';

export const FAULT_KINDS = [
  'none',
  'migration-fails-once',
  'migration-fails-always',
  'destination-full',
  'host-never-back',
  'xapi-never-back',
  'slow-reboot',
  'host-key-change',
  'sessions-expire',
  'unmanage-5xx',
  'unmanage-hang',
  'restore-5xx',
  'never-reconnect',
  'abort',
  'hard-stop',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type Status =
  | 'done'
  | 'failed'
  | 'aborted'
  | 'needs_attention'
  | 'stopped'
  | 'refused'
  | 'suspended'
  | 'dry_run';

export type Random = () => number;
export const pick = <T>(random: Random, items: readonly T[]): T =>
  items[Math.floor(random() * items.length)] as T;

/** A run that can be interrupted: Ctrl-C for the CLI, the Abort button for the worker. */
export interface Interruptible {
  /** `hard`: Ctrl-C twice (CLI), or the worker restarted mid-run. */
  interrupt(hard: boolean): void;
}

/** A fault armed on a cluster for one run, and what it takes to put things right afterwards. */
export interface ArmedFault {
  target: string;
  expected: readonly Status[];
  env?: Record<string, string>;
  /** Told about the run once it started (to press Ctrl-C, or Abort). */
  started?(attempt: Interruptible): void;
  /** After a halt: clear the fault as an operator would; `retire` when the cluster cannot be mended. */
  repair?(): Promise<'resume' | 'retire'>;
  /** Once the run is over, whatever its outcome: leave no fault behind for the next run. */
  cleanup?(): Promise<void> | void;
  /** The lab cannot be used again after this fault (it would strike every later run). */
  retireAfter?: boolean;
}

/** Calls `action` once, on the first operation from now on that matches. */
export function onOperation(
  lab: Lab,
  matches: (op: Operation) => boolean,
  action: (op: Operation) => void,
): () => void {
  const unsubscribe = lab.log.subscribe((op) => {
    if (!matches(op)) return;
    unsubscribe();
    action(op);
  });
  return unsubscribe;
}

function waitForOperation(
  lab: Lab,
  matches: (op: Operation) => boolean,
  timeoutMs: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    if (lab.log.entries().some(matches)) return resolve(true);
    const timer = setTimeout(() => {
      unsubscribe();
      resolve(false);
    }, timeoutMs);
    const unsubscribe = onOperation(lab, matches, () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export async function until(probe: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}

function runningGuests(lab: Lab): string[] {
  return lab.model
    .guestVms()
    .filter((vm) => vm.powerState === 'Running')
    .map((vm) => vm.name)
    .sort();
}

/** A host event that happens in every full run: the trigger of abort, hard stop and session expiry. */
function randomTrigger(lab: Lab, random: Random): { describe: string; matches: (op: Operation) => boolean } {
  const host = pick(random, lab.model.hosts).name;
  const kind = pick(random, ['vm.migration_started', 'host.reboot_requested', 'host.came_up']);
  return { describe: `${kind} ${host}`, matches: (op) => op.kind === kind && op.host === host };
}

export function armFault(kind: FaultKind, lab: Lab, random: Random, index: number): ArmedFault {
  const host = pick(random, lab.model.hosts).name;
  switch (kind) {
    case 'none':
      return { target: '-', expected: ['done'] };
    case 'migration-fails-once':
    case 'migration-fails-always': {
      const vm = pick(random, runningGuests(lab));
      const always = kind === 'migration-fails-always';
      lab.faults.failMigration(vm, always ? 99 : 1);
      return {
        target: vm,
        expected: always ? ['failed'] : ['done'],
        cleanup: () => lab.faults.failMigration(vm, 0),
      };
    }
    case 'destination-full': {
      const intruder = `intruder${index}`;
      const unsubscribe = onOperation(
        lab,
        (op) => op.kind === 'vm.migration_started',
        (op) => {
          const to = String(op.detail?.to);
          const free = lab.model.freeMemory(lab.model.hostByName(to).ref);
          if (free > 2 * GiB) lab.faults.startVm(to, intruder, free - 1 * GiB);
        },
      );
      return {
        target: 'first destination',
        expected: ['done', 'failed'],
        cleanup: () => {
          unsubscribe();
          // Its owner shuts it down again, so the next run has the pool's usual room.
          const vm = lab.model.guestVms().find((v) => v.name === intruder);
          if (vm) {
            vm.powerState = 'Halted';
            vm.residentOn = NULL_REF;
          }
        },
      };
    }
    case 'host-never-back':
    case 'xapi-never-back':
      if (kind === 'host-never-back') lab.faults.hostNeverComesBack(host);
      else lab.faults.xapiNeverComesBack(host);
      return {
        target: host,
        expected: ['needs_attention'],
        env: { HOST_REBOOT_TIMEOUT_SECONDS: '2' },
        // The host needs a technician: the operator clicks Finish and the cluster is mended by hand.
        repair: async () => 'retire',
      };
    case 'slow-reboot': {
      lab.faults.slowReboot(host, 2_500);
      const from = lab.log.entries().length;
      return {
        target: host,
        expected: ['done'],
        env: { HOST_REBOOT_TIMEOUT_SECONDS: '2' },
        repair: async () => {
          // The operator waits until the host is back, then resumes.
          const back = await waitForOperation(
            lab,
            (op) => op.seq > from && op.kind === 'host.came_up' && op.host === host,
            15_000,
          );
          return back ? 'resume' : 'retire';
        },
        cleanup: () => lab.faults.slowReboot(host, 0),
      };
    }
    case 'host-key-change': {
      lab.faults.changeHostKeyOnReboot(host);
      const address = lab.model.hostByName(host).address;
      return {
        target: host,
        expected: ['done'],
        repair: async () => {
          // The operator checks the machine and takes its new key into known_hosts.
          const line = await scanHostKey(address, lab.info.ssh.port);
          replaceKnownHost(lab.info.ssh.knownHostsFile, address, lab.info.ssh.port, line);
          return 'resume';
        },
        retireAfter: true,
      };
    }
    case 'sessions-expire': {
      const trigger = randomTrigger(lab, random);
      const unsubscribe = onOperation(lab, trigger.matches, () => lab.faults.expireSessions());
      return { target: trigger.describe, expected: ['done'], cleanup: unsubscribe };
    }
    case 'unmanage-5xx':
      lab.cloudstack.faults.failNext('updateCluster', 1, 530);
      return { target: 'updateCluster Unmanaged', expected: ['failed'] };
    case 'unmanage-hang':
      lab.cloudstack.faults.hangNext('updateCluster', 1);
      return {
        target: 'updateCluster Unmanaged',
        expected: ['failed'],
        env: { CLOUDSTACK_UPDATE_TIMEOUT_SECONDS: '1' },
      };
    case 'restore-5xx': {
      const times = 1 + Math.floor(random() * 2);
      const hosts = lab.model.hosts.length;
      let cameUp = 0;
      const unsubscribe = onOperation(
        lab,
        (op) => op.kind === 'host.came_up' && ++cameUp === hosts,
        () => lab.cloudstack.faults.failNext('updateCluster', times, 530),
      );
      return {
        target: `updateCluster Managed x${times}`,
        expected: ['done'],
        // CloudStack answers again: the same command finishes the restore.
        repair: async () => 'resume',
        cleanup: unsubscribe,
      };
    }
    case 'never-reconnect':
      lab.cloudstack.faults.neverReconnect(true);
      return {
        target: 'CloudStack agents',
        expected: ['done'],
        env: { CLOUDSTACK_WAIT_TIMEOUT_SECONDS: '2' },
        cleanup: async () => {
          lab.cloudstack.faults.neverReconnect(false);
          await until(() => lab.model.hosts.every((h) => lab.cloudstack.hostState(h.uuid) === 'Up'), 10_000);
        },
      };
    case 'abort':
    case 'hard-stop': {
      const trigger = randomTrigger(lab, random);
      let unsubscribe = () => {};
      return {
        target: trigger.describe,
        // The trigger may come after the last safe point (an abort then changes nothing) or never. A
        // hard stop that finds the abort of its first Ctrl-C already restoring lets it finish.
        expected: ['aborted', 'done'],
        started: (attempt) => {
          unsubscribe = onOperation(lab, trigger.matches, () => attempt.interrupt(kind === 'hard-stop'));
        },
        repair: async () => 'resume',
        cleanup: () => unsubscribe(),
      };
    }
  }
}
