/**
 * Whole rolling reboots through the real CLI against the lab: every host rebooted exactly once,
 * the pool and CloudStack put back as they were (I6), and no more migrations than the optimum.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { type CliRun, eventsOf, runCliAgainst, startTestLab, testStateDir } from '../support/lab-cli.js';

let lab: Lab | undefined;
afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

/** Runs `--exec --json` and checks everything a clean run must show, in the lab and in the output. */
async function expectCleanRun(current: Lab, hostNames: string[]): Promise<CliRun> {
  const { stateDir } = testStateDir();
  const run = await runCliAgainst(current, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);

  const report = current.checkInvariants();
  expect(report.violations).toEqual([]);
  expect(report.reboots).toEqual(Object.fromEntries(hostNames.map((h) => [h, 1])));
  expect(current.model.hosts.map((h) => h.rebootCount)).toEqual(hostNames.map(() => 1));
  expect(current.model.hosts.every((h) => h.enabled && h.live)).toBe(true);

  const [plan] = eventsOf(run, 'plan');
  expect(plan?.plan.hosts.map((h) => h.host)).toEqual(hostNames);
  expect(plan?.plan.hosts[0]?.master).toBe(true);
  expect(report.migrations).toBe(plan?.plan.optimalMigrations);
  expect(report.failedMigrations).toBe(0);

  const [finished] = eventsOf(run, 'finished');
  expect(finished?.migrations).toBe(report.migrations);
  expect(finished?.hosts.map((h) => h.host)).toEqual(hostNames);
  expect(eventsOf(run, 'host_done').map((e) => e.host)).toEqual(hostNames);
  expect(run.events.at(-1)).toMatchObject({ type: 'outcome', status: 'done', exitCode: 0 });

  expect(current.cloudstack.managedState()).toBe('Managed');
  const managedChanges = current.log.ofKind('cloudstack.managedstate').map((op) => op.detail?.to);
  expect(managedChanges.filter((to) => to !== 'PrepareUnmanaged')).toEqual(['Unmanaged', 'Managed']);
  const updates = current.log
    .ofKind('cloudstack.call')
    .filter((op) => op.detail?.command === 'updateCluster')
    .map((op) => (op.detail?.params as Record<string, string> | undefined)?.managedstate);
  expect(updates).toEqual(['Unmanaged', 'Managed']);

  const secrets = [
    current.info.xapi.password,
    current.info.cloudstack.secretKey,
    current.info.cloudstack.apiKey,
  ];
  for (const secret of secrets) expect(run.stdout).not.toContain(secret);
  return run;
}

describe('full rolling reboots', () => {
  it('reboots 2 hosts with HA and auto_poweron off, touching neither', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4, haEnabled: false, autoPoweron: false });
    const run = await expectCleanRun(lab, ['host1', 'host2']);
    expect(lab.model.pool.haEnabled).toBe(false);
    expect(lab.model.pool.otherConfig.auto_poweron).toBeUndefined();
    expect(lab.log.ofKind('pool.ha_disabled')).toHaveLength(0);
    expect(lab.log.ofKind('pool.ha_enabled')).toHaveLength(0);
    expect(lab.log.ofKind('pool.other_config')).toHaveLength(0);
    expect(eventsOf(run, 'ha_disabled')).toHaveLength(0);
    expect(eventsOf(run, 'auto_poweron_disabled')).toHaveLength(0);
  });

  it('reboots 3 hosts with HA on and auto_poweron off: HA back on the same SR and configuration', async () => {
    lab = await startTestLab({ hosts: 3, vms: 9, haEnabled: true, autoPoweron: false });
    const before = lab.model.restorableState();
    expect(before.haEnabled).toBe(true);
    const run = await expectCleanRun(lab, ['host1', 'host2', 'host3']);
    expect(lab.model.restorableState()).toEqual(before);
    const [enabled] = lab.log.ofKind('pool.ha_enabled');
    expect(enabled?.detail?.configuration).toEqual({ timeout: '60' });
    expect(lab.log.ofKind('pool.ha_disabled')).toHaveLength(1);
    expect(lab.log.ofKind('pool.other_config')).toHaveLength(0);
    expect(eventsOf(run, 'ha_restored')).toHaveLength(1);
    // HA is off for every reboot, and on again only after the last host.
    const kinds = lab.log.entries().map((op) => op.kind);
    expect(kinds.indexOf('pool.ha_disabled')).toBeLessThan(kinds.indexOf('host.disabled'));
    expect(kinds.indexOf('pool.ha_enabled')).toBeGreaterThan(kinds.lastIndexOf('host.came_up'));
  });

  it('reboots 6 hosts with HA and auto_poweron on, surviving the master reboot', async () => {
    lab = await startTestLab({ hosts: 6, vms: 18, haEnabled: true, autoPoweron: true });
    const before = lab.model.restorableState();
    expect(before).toMatchObject({ haEnabled: true, autoPoweron: 'true' });
    // A halted VM marked auto_poweron: a host booting with pool auto_poweron on would start it.
    expect(lab.model.vmByName('autostart01').powerState).toBe('Halted');
    const hosts = ['host1', 'host2', 'host3', 'host4', 'host5', 'host6'];
    const run = await expectCleanRun(lab, hosts);
    expect(lab.model.restorableState()).toEqual(before);
    expect(lab.log.ofKind('vm.started')).toEqual([]);
    expect(lab.model.vmByName('autostart01').powerState).toBe('Halted');
    // auto_poweron is off while hosts reboot (so they start nothing) and back to "true" at the end.
    // (XAPI sets a map key by removing it, then adding it: the removals show as `to: undefined`.)
    const autoPoweron = lab.log
      .ofKind('pool.other_config')
      .filter((op) => op.detail?.key === 'auto_poweron' && op.detail?.to !== undefined)
      .map((op) => op.detail?.to);
    expect(autoPoweron).toEqual(['false', 'true']);
    const kinds = lab.log.entries().map((op) => op.kind);
    const firstReboot = kinds.indexOf('host.reboot_requested');
    expect(kinds.indexOf('pool.other_config')).toBeLessThan(firstReboot);
    expect(kinds.lastIndexOf('pool.other_config')).toBeGreaterThan(kinds.lastIndexOf('host.came_up'));
    // The master (host1) goes first; its reboot invalidates every XAPI session, and the run goes on.
    const invalidated = lab.log.ofKind('xapi.sessions_invalidated');
    expect(invalidated.length).toBeGreaterThanOrEqual(1);
    const masterDown = lab.log.ofKind('host.went_down').find((op) => op.host === 'host1');
    expect(masterDown?.detail?.wasMaster).toBe(true);
    expect(lab.log.ofKind('xapi.login').some((op) => op.seq > (invalidated[0]?.seq ?? 0))).toBe(true);
    expect(eventsOf(run, 'host_done')).toHaveLength(6);
  });

  it('prints a readable account without --json', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4, haEnabled: true, autoPoweron: true });
    const { stateDir } = testStateDir();
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec'], { STATE_DIR: stateDir });
    expect(run.code).toBe(0);
    expect(lab.checkInvariants().violations).toEqual([]);
    expect(run.events).toEqual([]);
    expect(run.stdout).toContain('Plan for CLUSTER-1 (reboot order, pool master first):');
    expect(run.stdout).toMatch(/1\. host1 \(pool master\)/);
    expect(run.stdout).toContain('[2/2] host2 done');
    expect(run.stdout).toContain('Pool HA restored');
    expect(run.stdout).toContain('Rolling reboot finished (exit 0)');
  });
});
