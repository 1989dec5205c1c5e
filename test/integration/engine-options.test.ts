/**
 * The run's options as the lab sees them: --threads bounds concurrent live migrations,
 * --ignore-hosts leaves a host alone entirely.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { eventsOf, runCliAgainst, startTestLab, testStateDir } from '../support/lab-cli.js';

let lab: Lab | undefined;
afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

async function runWithThreads(threads: string[]): Promise<{ maxTotal: number; perHost: number[] }> {
  lab = await startTestLab({ hosts: 2, vms: 12, haEnabled: false, autoPoweron: false });
  const vmsPerHost = lab.model.hosts.map((h) => lab?.model.residentGuests(h.ref).length ?? 0);
  const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json', ...threads], {
    STATE_DIR: testStateDir().stateDir,
  });
  expect(run.code).toBe(0);
  const report = lab.checkInvariants();
  expect(report.violations).toEqual([]);
  expect(report.reboots).toEqual({ host1: 1, host2: 1 });
  // The lab counts migrations in flight itself; the log shows the same from each start.
  const fromLog = Math.max(
    ...lab.log.ofKind('vm.migration_started').map((op) => Number(op.detail?.concurrentTotal)),
  );
  expect(fromLog).toBe(lab.model.migrationConcurrency().maxTotal);
  return { maxTotal: lab.model.migrationConcurrency().maxTotal, perHost: vmsPerHost };
}

describe('--threads', () => {
  it('never runs more than 2 migrations at once with --threads 2, but does run 2', async () => {
    const { maxTotal, perHost } = await runWithThreads(['--threads', '2']);
    expect(Math.min(...perHost)).toBeGreaterThan(2);
    expect(maxTotal).toBe(2);
  });

  it('runs more than 2 at once by default (5)', async () => {
    const { maxTotal, perHost } = await runWithThreads([]);
    expect(Math.min(...perHost)).toBeGreaterThanOrEqual(5);
    expect(maxTotal).toBeGreaterThan(2);
    expect(maxTotal).toBeLessThanOrEqual(5);
  });
});

describe('--ignore-hosts', () => {
  it('never disables or reboots host3 and moves no VM to it', async () => {
    lab = await startTestLab({ hosts: 4, vms: 8 });
    const host3Vms = lab.model.residentGuests(lab.model.hostByName('host3').ref).map((vm) => vm.name);
    expect(host3Vms.length).toBeGreaterThan(0);
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json', '--ignore-hosts', 'host3'], {
      STATE_DIR: testStateDir().stateDir,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host4: 1 });
    const host3Ops = lab.log
      .entries()
      .filter((op) => op.host === 'host3' && op.kind.startsWith('host.'))
      .map((op) => op.kind);
    expect(host3Ops).toEqual([]);
    const toHost3 = lab.log
      .entries()
      .filter((op) => op.kind.startsWith('vm.migrat') && op.detail?.to === 'host3');
    expect(toHost3).toEqual([]);
    // host3's own VMs stayed where they were.
    const host3Ref = lab.model.hostByName('host3').ref;
    expect(lab.model.residentGuests(host3Ref).map((vm) => vm.name)).toEqual(host3Vms);
    const preflight = eventsOf(run, 'preflight')[0];
    expect(preflight?.findings.map((f) => f.code)).toContain('HOSTS_IGNORED');
    const plan = eventsOf(run, 'plan')[0];
    expect(plan?.plan?.hosts.map((h) => h.host)).toEqual(['host1', 'host2', 'host4']);
  });

  it('refuses an unknown host name with exit 3 and changes nothing', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4 });
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--ignore-hosts', 'host9'], {
      STATE_DIR: testStateDir().stateDir,
    });
    expect(run.code).toBe(3);
    expect(run.stdout).toContain('--ignore-hosts names host9, which is not a host of CLUSTER-1');
    expect(lab.log.ofKind('xapi.call').filter((op) => op.detail?.readOnly === false)).toEqual([]);
  });
});
