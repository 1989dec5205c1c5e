/**
 * What happens before anything changes: the dry run, pre-flight refusals (blockers, N+1 capacity)
 * and usage / configuration errors. Each case proves from the lab's log that nothing was changed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import type { Operation } from '../../lab/operation-log.js';
import { DOM0_MEMORY_BYTES, GiB, MiB, type PoolSpec } from '../../lab/pool-generator.js';
import type { Finding } from '../../src/engine/events.js';
import { formatBytes } from '../../src/engine/format.js';
import { type CliRun, eventsOf, runCliAgainst, startTestLab, testStateDir } from '../support/lab-cli.js';

let lab: Lab | undefined;
afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

const NIC = 1.25e9;

function twoHostSpec(vms: PoolSpec['vms'], hostMemory = 64 * GiB): PoolSpec {
  return {
    hosts: [
      { name: 'host1', memoryBytes: hostMemory, nicBytesPerSecond: NIC },
      { name: 'host2', memoryBytes: hostMemory, nicBytesPerSecond: NIC },
    ],
    vms,
    autoPoweronVms: [],
  };
}

function mutatingCalls(current: Lab): Operation[] {
  const xapi = current.log.ofKind('xapi.call').filter((op) => op.detail?.readOnly === false);
  const cloudstack = current.log
    .ofKind('cloudstack.call')
    .filter((op) => op.detail?.command === 'updateCluster');
  return [...xapi, ...cloudstack];
}

function expectNothingChanged(current: Lab): void {
  expect(mutatingCalls(current)).toEqual([]);
  const changes = ['host.disabled', 'vm.migration_started', 'host.reboot_requested', 'pool.ha_disabled'];
  expect(current.log.entries().filter((op) => changes.includes(op.kind))).toEqual([]);
  expect(current.checkInvariants().violations).toEqual([]);
}

function findings(run: CliRun): Finding[] {
  return eventsOf(run, 'preflight')[0]?.findings ?? [];
}

describe('the dry run', () => {
  it('shows the plan, exits 0 and makes no mutating call anywhere', async () => {
    lab = await startTestLab({ hosts: 3, vms: 9 });
    const { stateDir } = testStateDir();
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--json'], { STATE_DIR: stateDir });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    // It really looked at the pool and at CloudStack...
    expect(lab.log.ofKind('xapi.call').length).toBeGreaterThan(0);
    expect(lab.log.ofKind('cloudstack.call').map((op) => op.detail?.command)).toContain('listHosts');
    // ...and changed nothing.
    expectNothingChanged(lab);
    expect(lab.cloudstack.managedState()).toBe('Managed');
    const plan = eventsOf(run, 'plan')[0];
    expect(plan?.plan?.hosts.map((h) => h.host)).toEqual(['host1', 'host2', 'host3']);
    expect(run.events.map((e) => e.type)).not.toContain('run_started');
    expect(run.events.at(-1)).toMatchObject({ type: 'outcome', status: 'dry_run', ok: true, exitCode: 0 });
  });

  it('says in words that nothing was changed', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4 });
    const run = await runCliAgainst(lab, ['CLUSTER-1'], { STATE_DIR: testStateDir().stateDir });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('no blockers');
    expect(run.stdout).toContain('Dry run: nothing was changed. Add --exec to do it (exit 0)');
    expectNothingChanged(lab);
  });
});

describe('pre-flight refusals', () => {
  it('refuses --exec with exit 3 when a VM is on a local SR, naming the VM, and changes nothing', async () => {
    lab = await startTestLab({
      spec: twoHostSpec([
        { name: 'vm01', memoryBytes: 2 * GiB, host: 0 },
        { name: 'vm02', memoryBytes: 2 * GiB, host: 1 },
        { name: 'vm03', memoryBytes: 2 * GiB, host: 1, onLocalSr: true },
      ]),
    });
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], {
      STATE_DIR: testStateDir().stateDir,
    });
    expect(run.code).toBe(3);
    const blockers = findings(run).filter((f) => f.severity === 'blocker');
    expect(blockers).toHaveLength(1);
    expect(blockers[0]).toMatchObject({ code: 'VM_REQUIRES_SR', host: 'host2', vm: 'vm03' });
    expect(blockers[0]?.message).toMatch(/^vm03 on host2 cannot be migrated: VM_REQUIRES_SR OpaqueRef:/);
    expect(run.events.at(-1)).toMatchObject({ type: 'outcome', status: 'refused', exitCode: 3 });
    expect(String(run.events.at(-1)?.reason)).toContain('vm03');
    expect(run.events.map((e) => e.type)).not.toContain('run_started');
    expectNothingChanged(lab);
  });

  it('refuses an N+1 shortfall with exit 3, naming the host and how much is missing', async () => {
    const vm = 10 * GiB;
    lab = await startTestLab({
      spec: twoHostSpec(
        [
          { name: 'vm01', memoryBytes: vm, host: 0 },
          { name: 'vm02', memoryBytes: vm, host: 1 },
        ],
        16 * GiB,
      ),
    });
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec'], { STATE_DIR: testStateDir().stateDir });
    expect(run.code).toBe(3);
    // vm01 (with XAPI's overhead of 1 MiB per 128 MiB) must fit beside vm02 on host2.
    const footprint = vm + (vm / 128 / MiB) * MiB;
    const freeOnHost2 = 16 * GiB - DOM0_MEMORY_BYTES - footprint;
    const shortfall = formatBytes(footprint - freeOnHost2);
    expect(run.stdout).toContain(`BLOCKER: Not enough capacity to empty host1: 1 VM (vm01 `);
    expect(run.stdout).toContain(`does not fit; ${shortfall} short`);
    expect(run.stdout).toMatch(/Refused by pre-flight, nothing was changed: .*host1.* \(exit 3\)/);
    expectNothingChanged(lab);
  });

  it('refuses an unknown cluster with exit 3 without touching XAPI', async () => {
    lab = await startTestLab({ hosts: 2, vms: 2 });
    const run = await runCliAgainst(lab, ['CLUSTER-9', '--exec'], { STATE_DIR: testStateDir().stateDir });
    expect(run.code).toBe(3);
    expect(run.stdout).toContain('CloudStack has no cluster named CLUSTER-9');
    expect(lab.log.ofKind('xapi.call')).toEqual([]);
    expectNothingChanged(lab);
  });
});

describe('usage and configuration errors', () => {
  const usageCases: Array<[string, string[], RegExp]> = [
    ['an unknown flag', ['CLUSTER-1', '--exec', '--force'], /Unknown option '--force'/],
    [
      'a bad --threads',
      ['CLUSTER-1', '--exec', '--threads', '0'],
      /--threads must be a whole number from 1 to 20/,
    ],
    ['a non-numeric --threads', ['CLUSTER-1', '--threads', '2x'], /--threads must be a whole number/],
    ['a bad cluster name', ['CLUSTER 1;rm', '--exec'], /is not a cluster name/],
    ['no cluster name', ['--exec'], /Name the cluster to reboot/],
  ];
  it.each(usageCases)('exits 2 on %s and contacts nothing', async (_, argv, message) => {
    lab ??= await startTestLab({ hosts: 2, vms: 2 });
    const run = await runCliAgainst(lab, argv, { STATE_DIR: testStateDir().stateDir });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toContain('Usage: reboot-cluster CLUSTER');
    expect(run.stdout).toBe('');
    expect(lab.log.entries()).toEqual([]);
  });

  it('exits 2 with one line per configuration problem, secrets not echoed, nothing contacted', async () => {
    lab = await startTestLab({ hosts: 2, vms: 2 });
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec'], {
      STATE_DIR: testStateDir().stateDir,
      CLOUDSTACK_URL: 'ftp://nowhere',
      XAPI_PASSWORD: '',
      POLL_INTERVAL_MS: 'soon',
      SSH_KNOWN_HOSTS_FILE: '/nonexistent/known_hosts',
    });
    expect(run.code).toBe(2);
    const problems = run.stderr
      .trim()
      .split('\n')
      .filter((line) => line.startsWith('  - '));
    expect(problems).toHaveLength(4);
    expect(problems.map((p) => p.split(' ')[3])).toEqual(
      expect.arrayContaining(['CLOUDSTACK_URL', 'XAPI_PASSWORD', 'POLL_INTERVAL_MS', 'SSH_KNOWN_HOSTS_FILE']),
    );
    expect(run.stderr).not.toContain(lab.info.cloudstack.secretKey);
    expect(run.stdout).toBe('');
    expect(lab.log.entries()).toEqual([]);
  });

  it('exits 2 on an unknown hook name before touching anything, listing the hooks that exist', async () => {
    lab = await startTestLab({ hosts: 2, vms: 2 });
    const { stateDir, hooksFile } = testStateDir({ patch: { command: 'echo patching' } });
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--post-empty-hook', 'reboot-all'], {
      STATE_DIR: stateDir,
      HOOKS_FILE: hooksFile as string,
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--post-empty-hook: no hook named "reboot-all". Defined hooks: patch.');
    expect(lab.log.entries()).toEqual([]);
  });
});
