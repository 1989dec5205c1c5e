/**
 * Fault matrix, CloudStack's side: `updateCluster` answering 5xx or never answering, when the run
 * unmanages the cluster and when it puts it back, and hosts that never return to Up after the
 * cluster is Managed again. Judged by the lab's log and invariants and by what the team is told.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { CloudStackClient } from '../../src/cloudstack/client.js';
import { unreportedChanges } from '../support/fault-checks.js';
import { type CliRun, eventsOf, runCliAgainst, startTestLab, testStateDir } from '../support/lab-cli.js';
import { until } from '../support/lab-waits.js';

const INTERNAL_ERROR = 'Internal error executing command, please contact your system administrator';

let lab: Lab | undefined;
afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

function updateClusterCalls(current: Lab): Array<string | undefined> {
  return current.log
    .ofKind('cloudstack.call')
    .filter((op) => op.detail?.command === 'updateCluster')
    .map((op) => (op.detail?.params as Record<string, string> | undefined)?.managedstate);
}

/** Arms `fault` once the last host is back, so it hits the `updateCluster` that restores the cluster. */
function beforeRestore(current: Lab, lastHost: string, fault: () => void): void {
  const unsubscribe = current.log.subscribe((op) => {
    if (op.kind === 'host.came_up' && op.host === lastHost) {
      unsubscribe();
      fault();
    }
  });
}

/** A run that failed before any host was touched: nothing on the pool changed, the cluster is Managed. */
function expectNothingChanged(current: Lab, run: CliRun, stateDir: string): void {
  expect(run.code).toBe(1);
  const report = current.checkInvariants();
  expect(report.violations).toEqual([]);
  expect(report.reboots).toEqual({});
  const poolChanges = current.log
    .entries()
    .filter((op) => /^(host\.|vm\.migration|pool\.)/.test(op.kind))
    .map((op) => op.kind);
  expect(poolChanges).toEqual([]);
  expect(current.cloudstack.managedState()).toBe('Managed');
  expect(eventsOf(run, 'failed')[0]?.leftChanged).toEqual([]);
  expect(run.events.at(-1)).toMatchObject({ type: 'outcome', status: 'failed', exitCode: 1 });
  expect(existsSync(join(stateDir, 'CLUSTER-1.checkpoint.json'))).toBe(false);
}

describe('updateCluster fails when the run unmanages the cluster', () => {
  it('a 530: exit 1 with the error verbatim, HA, auto_poweron and every host untouched', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4, haEnabled: true, autoPoweron: true });
    lab.cloudstack.faults.failNext('updateCluster', 1, 530);
    const { stateDir } = testStateDir();
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
    expectNothingChanged(lab, run, stateDir);
    const [failed] = eventsOf(run, 'failed');
    expect(failed?.reason).toBe(`CloudStack updateCluster failed: 530/4250 ${INTERNAL_ERROR}`);
    // The failed call may have half-happened on the server: the run asks for Managed again regardless.
    expect(updateClusterCalls(lab)).toEqual(['Unmanaged', 'Managed']);
  });

  it('no answer: gives up after CLOUDSTACK_UPDATE_TIMEOUT_SECONDS, exit 1, nothing on the pool touched', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4, haEnabled: true, autoPoweron: true });
    lab.cloudstack.faults.hangNext('updateCluster', 1);
    const { stateDir } = testStateDir();
    const startedAt = Date.now();
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], {
      STATE_DIR: stateDir,
      CLOUDSTACK_UPDATE_TIMEOUT_SECONDS: '1',
    });
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    expectNothingChanged(lab, run, stateDir);
    expect(eventsOf(run, 'failed')[0]?.reason).toMatch(
      /^CloudStack updateCluster to \S+ did not answer within 1 s$/,
    );
    expect(updateClusterCalls(lab)).toEqual(['Unmanaged', 'Managed']);
  });
});

describe('updateCluster fails when the run puts the cluster back', () => {
  it('a 530 once: the restore is tried again, the run finishes (exit 0) and says what happened', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4, haEnabled: true, autoPoweron: true });
    beforeRestore(lab, 'host2', () => lab?.cloudstack.faults.failNext('updateCluster', 1, 530));
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], {
      STATE_DIR: testStateDir().stateDir,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1 });
    expect(updateClusterCalls(lab)).toEqual(['Unmanaged', 'Managed', 'Managed']);
    expect(eventsOf(run, 'warning').map((e) => e.message)).toEqual([
      `could not restore CloudStack managed state: CloudStack updateCluster failed: 530/4250 ${INTERNAL_ERROR}; trying once more`,
    ]);
    // HA and auto_poweron were put back once each, before and regardless of CloudStack.
    expect(lab.log.ofKind('pool.ha_enabled')).toHaveLength(1);
    expect(eventsOf(run, 'finished')[0]?.attention).toEqual([]);
  });

  it('no answer once: the restore is tried again after the timeout and the run finishes', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4, haEnabled: false, autoPoweron: false });
    beforeRestore(lab, 'host2', () => lab?.cloudstack.faults.hangNext('updateCluster', 1));
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], {
      STATE_DIR: testStateDir().stateDir,
      CLOUDSTACK_UPDATE_TIMEOUT_SECONDS: '1',
    });
    expect(run.code).toBe(0);
    expect(lab.checkInvariants().violations).toEqual([]);
    expect(updateClusterCalls(lab)).toEqual(['Unmanaged', 'Managed', 'Managed']);
    expect(eventsOf(run, 'warning')[0]?.message).toMatch(/did not answer within 1 s; trying once more$/);
  });

  it('a 530 twice: needs attention saying the cluster is Unmanaged; the same command later finishes it', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4, haEnabled: true, autoPoweron: true });
    beforeRestore(lab, 'host2', () => lab?.cloudstack.faults.failNext('updateCluster', 2, 530));
    const { stateDir } = testStateDir();
    const halted = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
    expect(halted.code).toBe(1);
    const [attention] = eventsOf(halted, 'needs_attention');
    expect(attention?.host).toBe('CLUSTER-1');
    expect(attention?.reason).toBe(
      `could not restore CloudStack managed state: CloudStack updateCluster failed: 530/4250 ${INTERNAL_ERROR}`,
    );
    expect(attention?.leftChanged).toEqual([
      'CloudStack cluster CLUSTER-1 is Unmanaged (was Managed)',
      'already rebooted: host1, host2',
      'run the same command again to resume from the checkpoint',
    ]);
    expect(unreportedChanges(lab, attention?.leftChanged ?? [])).toEqual([]);
    // Only the managed state is left: HA and auto_poweron are back.
    const halfway = lab.checkInvariants();
    expect(halfway.violations).toEqual(['I6: CloudStack managed state is Unmanaged, was Managed']);

    const resumed = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
    expect(resumed.code).toBe(0);
    expect(eventsOf(resumed, 'run_started')[0]?.resumed).toBe(true);
    expect(eventsOf(resumed, 'host_rebooting')).toEqual([]);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1 });
    expect(existsSync(join(stateDir, 'CLUSTER-1.checkpoint.json'))).toBe(false);
  });
});

describe('CloudStack hosts never return to Up after the cluster is Managed again', () => {
  it('finishes the reboot with an attention item and exit 1; the pool and managed state are restored', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4, haEnabled: true, autoPoweron: true });
    const current = lab;
    const hostIds = lab.model.hosts.map((h) => h.uuid);
    // The cluster was unmanaged and managed again before (an earlier run): its hosts are Up again.
    const cloud = new CloudStackClient({ ...lab.info.cloudstack, timeoutMs: 5_000 });
    await cloud.updateCluster({ id: lab.info.cluster.id, managedState: 'Unmanaged' });
    await cloud.updateCluster({ id: lab.info.cluster.id, managedState: 'Managed' });
    await until(() => hostIds.every((id) => current.cloudstack.hostState(id) === 'Up'), 'hosts Up again');
    // From now on the management server does not reconnect agents; hosts already Up stay Up.
    lab.cloudstack.faults.neverReconnect(true);
    expect(hostIds.map((id) => current.cloudstack.hostState(id))).toEqual(['Up', 'Up']);

    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], {
      STATE_DIR: testStateDir().stateDir,
      CLOUDSTACK_WAIT_TIMEOUT_SECONDS: '2',
    });
    expect(run.code).toBe(1);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1 });
    expect(hostIds.map((id) => current.cloudstack.hostState(id))).toEqual(['Disconnected', 'Disconnected']);

    const note =
      "CloudStack hosts of CLUSTER-1 are not all Up again: CloudStack to show every host of the cluster Up did not finish within 2 s. Check the management server's agent connections";
    expect(eventsOf(run, 'warning').map((e) => e.message)).toEqual([note]);
    expect(eventsOf(run, 'cluster_managed')[0]?.hostsUp).toBe(0);
    expect(eventsOf(run, 'finished')[0]?.attention).toEqual([note]);
    expect(run.events.at(-1)).toMatchObject({
      type: 'outcome',
      status: 'done',
      attention: [note],
      exitCode: 1,
    });

    // Once the management server reconnects its agents, the hosts are Up without the bot doing more.
    lab.cloudstack.faults.neverReconnect(false);
    expect(hostIds.map((id) => current.cloudstack.hostState(id))).toEqual(['Connecting', 'Connecting']);
  });
});
