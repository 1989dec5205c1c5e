/**
 * Live migrations that fail: once (retried, the run goes on) and always (the run stops safely:
 * host back in service, cluster restored, no further reboot). XAPI's errors reach the output verbatim.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { eventsOf, runCliAgainst, startTestLab, testStateDir } from '../support/lab-cli.js';

let lab: Lab | undefined;
afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

/** The first guest (by name) running on `host` before the run. */
function guestOn(current: Lab, host: string): string {
  const hostRef = current.model.hostByName(host).ref;
  const names = current.model.residentGuests(hostRef).map((vm) => vm.name);
  const [first] = names.sort();
  if (!first) throw new Error(`the lab put no VM on ${host}`);
  return first;
}

describe('migration failures', () => {
  it('retries a migration that fails once and finishes the run', async () => {
    lab = await startTestLab({ hosts: 3, vms: 9 });
    const vm = guestOn(lab, 'host2');
    const vmRef = lab.model.vmByName(vm).ref;
    lab.faults.failMigration(vm, 1);
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], {
      STATE_DIR: testStateDir().stateDir,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
    expect(report.failedMigrations).toBe(1);

    const failed = run.events.filter((e) => e.type === 'migration_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ vm, from: 'host2', attempt: 1, willRetry: true });
    const error = failed[0]?.error as string[];
    expect(error[0]).toBe('VM_MIGRATE_FAILED');
    expect(error[1]).toBe(vmRef);
    expect(error.at(-1)).toBe('Lab: injected migration failure');
    // The lab saw the same failure, and then the VM moved on the second attempt.
    const labFailure = lab.log.ofKind('vm.migration_failed')[0];
    expect(labFailure?.detail?.error).toEqual(error);
    const retried = run.events.find((e) => e.type === 'migration_finished' && e.vm === vm && e.attempt === 2);
    expect(retried).toBeDefined();
    expect(lab.log.ofKind('vm.migrated').some((op) => op.vm === vm && op.seq > (labFailure?.seq ?? 0))).toBe(
      true,
    );
  });

  it('stops safely when a migration always fails: host re-enabled, cluster restored, no later reboot', async () => {
    lab = await startTestLab({ hosts: 3, vms: 9, haEnabled: true, autoPoweron: true });
    const vm = guestOn(lab, 'host2');
    const vmRef = lab.model.vmByName(vm).ref;
    lab.faults.failMigration(vm, 99);
    const { stateDir } = testStateDir();
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
    expect(run.code).toBe(1);

    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1 });
    expect(lab.log.ofKind('vm.migration_failed').filter((op) => op.vm === vm)).toHaveLength(2);
    // host2 was disabled, then put back in service; host3 was never touched.
    const host2 = lab.log.entries().filter((op) => op.host === 'host2' && op.kind.startsWith('host.'));
    expect(host2.map((op) => op.kind)).toEqual(['host.disabled', 'host.enabled']);
    expect(lab.log.entries().filter((op) => op.host === 'host3' && op.kind === 'host.disabled')).toEqual([]);
    const lastHost2Op = host2.at(-1)?.seq ?? 0;
    expect(lab.log.ofKind('host.reboot_requested').filter((op) => op.seq > lastHost2Op)).toEqual([]);
    // I6: HA, auto_poweron and the managed state are back, checked by checkInvariants and here.
    expect(lab.model.pool.haEnabled).toBe(true);
    expect(lab.model.pool.otherConfig.auto_poweron).toBe('true');
    expect(lab.cloudstack.managedState()).toBe('Managed');

    const failedEvents = run.events.filter((e) => e.type === 'migration_failed' && e.vm === vm);
    expect(failedEvents.map((e) => e.willRetry)).toEqual([true, false]);
    const failed = eventsOf(run, 'failed')[0];
    expect(failed?.error.slice(0, 2)).toEqual(['VM_MIGRATE_FAILED', vmRef]);
    expect(failed?.error.at(-1)).toBe('Lab: injected migration failure');
    expect(failed?.reason).toContain(`could not empty host2: ${vm} failed to migrate twice`);
    expect(run.events.at(-1)).toMatchObject({ type: 'outcome', status: 'failed', exitCode: 1 });
    expect(run.events.map((e) => e.type)).not.toContain('finished');
    expect(run.events.filter((e) => e.type === 'host_done').map((e) => e.host)).toEqual(['host1']);
  });
});
