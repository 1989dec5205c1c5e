/**
 * A host that never comes back after its reboot (I6, second half): the run halts in "needs
 * attention", says exactly what is left changed, never goes on to the next host, and keeps its
 * checkpoint so the same command can resume once a human has looked.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { eventsOf, runCliAgainst, startTestLab, testStateDir } from '../support/lab-cli.js';
import { waitForOperation } from '../support/lab-waits.js';

let lab: Lab | undefined;
afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

describe('a host that never comes back', () => {
  it('halts with needs_attention on host2, touches no later host and keeps the checkpoint', async () => {
    lab = await startTestLab({ hosts: 3, vms: 9, haEnabled: true, autoPoweron: true });
    lab.faults.hostNeverComesBack('host2');
    const { stateDir } = testStateDir();
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], {
      STATE_DIR: stateDir,
      HOST_REBOOT_TIMEOUT_SECONDS: '2',
    });
    expect(run.code).toBe(1);

    // The lab: host1 rebooted, host2 went down and stayed down, host3 never touched.
    const report = lab.checkInvariants({ expectRestored: false });
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1 });
    const touchedHost3 = lab.log
      .entries()
      .filter((op) => op.host === 'host3' && ['host.disabled', 'host.reboot_requested'].includes(op.kind));
    expect(touchedHost3).toEqual([]);
    expect(lab.log.ofKind('vm.migration_started').filter((op) => op.host === 'host3')).toEqual([]);
    const host2Down = lab.log.ofKind('host.went_down').find((op) => op.host === 'host2')?.seq ?? 0;
    const afterwards = lab.log.entries().filter((op) => op.seq > host2Down);
    expect(
      afterwards.filter((op) => op.kind === 'host.disabled' || op.kind === 'vm.migration_started'),
    ).toEqual([]);
    // Nothing was put back: a halted run leaves the cluster as it is for a human to judge.
    expect(lab.model.pool.haEnabled).toBe(false);
    expect(lab.model.pool.otherConfig.auto_poweron).toBe('false');
    expect(lab.cloudstack.managedState()).toBe('Unmanaged');

    const attention = eventsOf(run, 'needs_attention')[0];
    expect(attention?.host).toBe('host2');
    expect(attention?.reason).toMatch(/^host2 is not back/);
    expect(attention?.leftChanged).toEqual(
      expect.arrayContaining([
        'host2 was rebooting and is not confirmed back; it is disabled until it is',
        'CloudStack cluster CLUSTER-1 is Unmanaged (was Managed)',
        'pool auto_poweron is false (was true)',
        'already rebooted: host1',
        'run the same command again to resume from the checkpoint',
      ]),
    );
    expect(
      attention?.leftChanged.some((line) => line.startsWith('pool HA is off (was on, heartbeat SRs ')),
    ).toBe(true);
    expect(run.events.at(-1)).toMatchObject({ type: 'outcome', status: 'needs_attention', exitCode: 1 });
    expect(run.events.map((e) => e.type)).not.toContain('finished');

    const checkpointFile = join(stateDir, 'CLUSTER-1.checkpoint.json');
    expect(existsSync(checkpointFile)).toBe(true);
    const checkpoint = JSON.parse(readFileSync(checkpointFile, 'utf8'));
    expect(checkpoint.phase).toBe('needs_attention');
    const statuses = Object.values(checkpoint.hosts as Record<string, { name: string; status: string }>).map(
      (h) => [h.name, h.status],
    );
    expect(statuses).toEqual([
      ['host1', 'done'],
      ['host2', 'rebooting'],
      ['host3', 'pending'],
    ]);
    expect(checkpoint.changed).toEqual({ unmanaged: true, haDisabled: true, autoPoweronDisabled: true });
  });

  it('resumes once a slow host is finally back: it is not rebooted again and the run finishes', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6, haEnabled: true, autoPoweron: true });
    lab.faults.slowReboot('host2', 2_500);
    const { stateDir } = testStateDir();
    const halted = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], {
      STATE_DIR: stateDir,
      HOST_REBOOT_TIMEOUT_SECONDS: '1',
    });
    expect(halted.code).toBe(1);
    expect(eventsOf(halted, 'needs_attention')[0]?.host).toBe('host2');
    expect(lab.log.ofKind('host.came_up').filter((op) => op.host === 'host2')).toEqual([]);

    await waitForOperation(lab.log, (op) => op.kind === 'host.came_up' && op.host === 'host2', 'host2 back');
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(eventsOf(run, 'run_started')[0]).toMatchObject({ resumed: true });
    expect(eventsOf(run, 'host_done').map((e) => e.host)).toEqual(['host2', 'host3']);
    // The halt was answered by resuming: nothing is left for a human.
    expect(eventsOf(run, 'finished')[0]?.attention).toEqual([]);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
    expect(existsSync(join(stateDir, 'CLUSTER-1.checkpoint.json'))).toBe(false);
  });

  it('prints what is left changed for a person at a terminal', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4, haEnabled: false, autoPoweron: false });
    lab.faults.hostNeverComesBack('host1');
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec'], {
      STATE_DIR: testStateDir().stateDir,
      HOST_REBOOT_TIMEOUT_SECONDS: '1',
    });
    expect(run.code).toBe(1);
    expect(lab.checkInvariants({ expectRestored: false }).violations).toEqual([]);
    expect(lab.checkInvariants({ expectRestored: false }).reboots).toEqual({ host1: 1 });
    expect(run.stdout).toContain('NEEDS ATTENTION on host1: host1 is not back');
    expect(run.stdout).toContain('  - host1 was rebooting and is not confirmed back');
    expect(run.stdout).toContain('  - CloudStack cluster CLUSTER-1 is Unmanaged (was Managed)');
    expect(run.stdout).toContain('Rolling reboot halted: host1 needs attention (exit 1)');
  });
});
