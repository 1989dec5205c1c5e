/**
 * Fault matrix, the pool's side: a destination that runs out of memory mid-evacuation (someone
 * started a VM on it), a host whose XAPI never comes back after its reboot, and a host that comes
 * back with another SSH host key. Each run is judged by the lab's log and invariant checker, by what
 * the team is told (the JSON events), and by whether everything left changed is said.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { GiB, type PoolSpec } from '../../lab/pool-generator.js';
import { replaceKnownHost, scanHostKey, unreportedChanges } from '../support/fault-checks.js';
import { eventsOf, runCliAgainst, startTestLab, testStateDir } from '../support/lab-cli.js';

let lab: Lab | undefined;
afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

/** `hosts` hosts of 32 GiB, each running `perHost` VMs of 4 GiB: room for N+1 with some to spare. */
function evenPool(hosts: number, perHost: number): PoolSpec {
  return {
    hosts: Array.from({ length: hosts }, (_, i) => ({
      name: `host${i + 1}`,
      memoryBytes: 32 * GiB,
      nicBytesPerSecond: 1.25e9,
    })),
    vms: Array.from({ length: hosts * perHost }, (_, i) => ({
      name: `vm${String(i + 1).padStart(2, '0')}`,
      memoryBytes: 4 * GiB,
      host: Math.floor(i / perHost),
    })),
    autoPoweronVms: [],
  };
}

/** Right after the first migration starts, someone starts a VM that takes all but 1 GiB of its destination. */
function fillFirstDestination(current: Lab): Promise<{ host: string; intruderBytes: number }> {
  return new Promise((resolve) => {
    const unsubscribe = current.log.subscribe((op) => {
      if (op.kind !== 'vm.migration_started') return;
      unsubscribe();
      const host = String(op.detail?.to);
      const intruderBytes = current.model.freeMemory(current.model.hostByName(host).ref) - 1 * GiB;
      current.faults.startVm(host, 'intruder', intruderBytes);
      resolve({ host, intruderBytes });
    });
  });
}

describe('a destination runs out of memory mid-evacuation', () => {
  it('retries the refused migration on another host that fits and finishes, the new VM untouched', async () => {
    lab = await startTestLab({ spec: evenPool(3, 3), haEnabled: true, autoPoweron: true });
    const filled = fillFirstDestination(lab);
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json', '--threads', '1'], {
      STATE_DIR: testStateDir().stateDir,
    });
    const { host: full } = await filled;
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);

    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
    // XAPI refused the next migration to the full host, verbatim, and the engine went elsewhere.
    const refused = eventsOf(run, 'migration_failed');
    expect(refused.length).toBeGreaterThan(0);
    for (const failure of refused) {
      expect(failure).toMatchObject({ from: 'host1', to: full, attempt: 1, willRetry: true });
      expect(failure.error[0]).toBe('HOST_NOT_ENOUGH_FREE_MEMORY');
      const retried = eventsOf(run, 'migration_finished').find((e) => e.vm === failure.vm && e.attempt === 2);
      expect(retried?.to).not.toBe(full);
      expect(retried?.to).not.toBe('host1');
    }
    // The VM someone started is a guest like any other: still running, moved off its host in time.
    expect(lab.model.vmByName('intruder').powerState).toBe('Running');
    expect(eventsOf(run, 'finished')[0]?.attention).toEqual([]);
  });

  it('stops safely when no other host fits: host1 back in service, cluster restored, nothing rebooted', async () => {
    lab = await startTestLab({ spec: evenPool(2, 2), haEnabled: true, autoPoweron: true });
    const filled = fillFirstDestination(lab);
    const { stateDir } = testStateDir();
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json', '--threads', '1'], {
      STATE_DIR: stateDir,
    });
    await filled;
    expect(run.code).toBe(1);

    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({});
    expect(lab.log.ofKind('host.reboot_requested')).toEqual([]);
    const host1 = lab.log.entries().filter((op) => op.host === 'host1' && op.kind.startsWith('host.'));
    expect(host1.map((op) => op.kind)).toEqual(['host.disabled', 'host.enabled']);

    const [failed] = eventsOf(run, 'failed');
    expect(failed?.reason).toMatch(
      /^could not empty host1: vm0\d failed to migrate twice: HOST_NOT_ENOUGH_FREE_MEMORY/,
    );
    expect(failed?.error[0]).toBe('HOST_NOT_ENOUGH_FREE_MEMORY');
    expect(failed?.leftChanged).toEqual([]);
    expect(eventsOf(run, 'migration_failed').map((e) => e.willRetry)).toEqual([true, false]);
    expect(eventsOf(run, 'ha_restored')).toHaveLength(1);
    expect(eventsOf(run, 'cluster_managed')).toHaveLength(1);
    expect(existsSync(join(stateDir, 'CLUSTER-1.checkpoint.json'))).toBe(false);
    expect(lab.model.vmByName('intruder').powerState).toBe('Running');
  });
});

describe('a host comes back but its XAPI does not', () => {
  it('halts on host2 saying SSH is back but XAPI is not, touches nothing more and lists what is left changed', async () => {
    lab = await startTestLab({ spec: evenPool(3, 2), haEnabled: true, autoPoweron: true });
    lab.faults.xapiNeverComesBack('host2');
    const { stateDir } = testStateDir();
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], {
      STATE_DIR: stateDir,
      HOST_REBOOT_TIMEOUT_SECONDS: '2',
    });
    expect(run.code).toBe(1);

    const report = lab.checkInvariants({ expectRestored: false });
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1 });
    // host2's sshd answered on a new boot; its XAPI never did.
    expect(lab.log.ofKind('host.ssh_up').map((op) => op.host)).toEqual(['host1', 'host2']);
    expect(lab.log.ofKind('host.came_up').map((op) => op.host)).toEqual(['host1']);
    const host2Down = lab.log.ofKind('host.went_down').find((op) => op.host === 'host2')?.seq ?? 0;
    const touchedAfter = lab.log
      .entries()
      .filter(
        (op) =>
          op.seq > host2Down &&
          /^(host\.(disabled|enabled|reboot_requested)|vm\.migration_started|pool\.)/.test(op.kind),
      );
    expect(touchedAfter).toEqual([]);

    const [attention] = eventsOf(run, 'needs_attention');
    expect(attention?.host).toBe('host2');
    expect(attention?.reason).toMatch(
      /^host2 is not back: .*SSH answers on a new boot, but XAPI never showed its agent restarted$/,
    );
    expect(unreportedChanges(lab, attention?.leftChanged ?? [])).toEqual([]);
    expect(attention?.leftChanged).toContain('already rebooted: host1');
    expect(run.events.map((e) => e.type)).not.toContain('finished');
    expect(existsSync(join(stateDir, 'CLUSTER-1.checkpoint.json'))).toBe(true);
  });
});

describe('XAPI forgets its sessions and tasks while a migration is in flight (toolstack restart)', () => {
  it('waits for the migration whose task was lost instead of failing the run, and finishes', async () => {
    // Migrations last long enough that the retry finds the first one still going.
    lab = await startTestLab({ spec: evenPool(3, 2), timings: { migrationOverheadMs: 400 } });
    const current = lab;
    let inFlight = '';
    const unsubscribe = lab.log.subscribe((op) => {
      if (op.kind === 'vm.migration_started' && op.host === 'host3') {
        unsubscribe();
        inFlight = op.vm ?? '';
        current.faults.expireSessions();
      }
    });
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], {
      STATE_DIR: testStateDir().stateDir,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });

    // The engine was told the task was lost, its retry was refused as busy, and it waited.
    const attempts = eventsOf(run, 'migration_failed').filter((e) => e.vm === inFlight);
    expect(attempts.map((e) => [e.attempt, e.error[0]])).toEqual([
      [1, 'CRB_XAPI_TRANSPORT'],
      [2, 'OTHER_OPERATION_IN_PROGRESS'],
    ]);
    expect(attempts[0]?.error[1]).toMatch(/was lost .*its outcome is unknown$/);
    // The lab moved that VM off host3 exactly once: the migration the lost task belonged to.
    const moves = lab.log.ofKind('vm.migrated').filter((op) => op.vm === inFlight && op.host === 'host3');
    expect(moves).toHaveLength(1);
    expect(eventsOf(run, 'finished')[0]?.attention).toEqual([]);
  });
});

describe("a host's SSH host key changes across its reboot", () => {
  it('refuses the new key and needs attention naming it; after known_hosts is fixed the same command finishes', async () => {
    lab = await startTestLab({ spec: evenPool(3, 2), haEnabled: true, autoPoweron: true });
    lab.faults.changeHostKeyOnReboot('host2');
    const { stateDir } = testStateDir();
    const halted = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
    expect(halted.code).toBe(1);

    const [attention] = eventsOf(halted, 'needs_attention');
    expect(attention?.host).toBe('host2');
    expect(attention?.reason).toMatch(
      /^host2 came back with an SSH host key that known_hosts does not list: .*SHA256:\S+.*update SSH_KNOWN_HOSTS_FILE, then resume$/,
    );
    // Refused: no session was ever authenticated against the new key.
    const host2Up = lab.log.ofKind('host.ssh_up').find((op) => op.host === 'host2')?.seq ?? 0;
    expect(lab.log.ofKind('ssh.auth').filter((op) => op.host === 'host2' && op.seq > host2Up)).toEqual([]);
    expect(unreportedChanges(lab, attention?.leftChanged ?? [])).toEqual([]);
    expect(lab.checkInvariants({ expectRestored: false }).violations).toEqual([]);
    expect(lab.log.entries().filter((op) => op.host === 'host3' && op.kind === 'host.disabled')).toEqual([]);

    // The operator checks the machine, takes its new key into known_hosts and runs the command again.
    const address = lab.model.hostByName('host2').address;
    const newKey = await scanHostKey(address, lab.info.ssh.port);
    replaceKnownHost(lab.info.ssh.knownHostsFile, address, lab.info.ssh.port, newKey);
    const resumed = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(eventsOf(resumed, 'run_started')[0]?.resumed).toBe(true);
    expect(eventsOf(resumed, 'host_rebooting').map((e) => e.host)).toEqual(['host3']);
    expect(eventsOf(resumed, 'host_done').map((e) => e.host)).toEqual(['host2', 'host3']);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
  });
});
