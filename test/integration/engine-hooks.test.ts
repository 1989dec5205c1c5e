/**
 * Host hooks (named commands from HOOKS_FILE run over SSH): a succeeding hook runs once per host
 * at its point in the procedure; a failing post-empty hook stops the run before that host's
 * reboot, with the host back in service and the cluster restored.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { eventsOf, runCliAgainst, startTestLab, testStateDir } from '../support/lab-cli.js';

let lab: Lab | undefined;
afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

function execsOf(current: Lab, command: string) {
  return current.log.ofKind('ssh.exec').filter((op) => op.detail?.command === command);
}

describe('host hooks', () => {
  it('runs the pre- and post-empty hooks once per host, at the right moments', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4 });
    const drain = 'echo draining';
    const patch = 'echo patching; echo patched';
    const { stateDir, hooksFile } = testStateDir({ drain: { command: drain }, patch: { command: patch } });
    const run = await runCliAgainst(
      lab,
      ['CLUSTER-1', '--exec', '--json', '--pre-empty-hook', 'drain', '--post-empty-hook', 'patch'],
      { STATE_DIR: stateDir, HOOKS_FILE: hooksFile as string },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1 });

    expect(execsOf(lab, drain).map((op) => op.host)).toEqual(['host1', 'host2']);
    expect(execsOf(lab, patch).map((op) => op.host)).toEqual(['host1', 'host2']);
    for (const host of ['host1', 'host2']) {
      const seqOf = (
        kind: string,
        match: (op: { detail?: Record<string, unknown> }) => boolean = () => true,
      ) => lab?.log.entries().find((op) => op.host === host && op.kind === kind && match(op))?.seq ?? -1;
      const disabled = seqOf('host.disabled');
      const pre = seqOf('ssh.exec', (op) => op.detail?.command === drain);
      const firstMigration = seqOf('vm.migration_started');
      const post = seqOf('ssh.exec', (op) => op.detail?.command === patch);
      const reboot = seqOf('host.reboot_requested');
      expect(disabled).toBeGreaterThan(0);
      expect(pre).toBeGreaterThan(disabled);
      if (firstMigration > 0) expect(firstMigration).toBeGreaterThan(pre);
      expect(post).toBeGreaterThan(Math.max(pre, firstMigration));
      expect(reboot).toBeGreaterThan(post);
    }
    const finished = run.events.filter((e) => e.type === 'hook_finished');
    expect(finished.map((e) => [e.host, e.hook, e.phase, e.exitCode, e.output])).toEqual([
      ['host1', 'drain', 'pre-empty', 0, 'draining'],
      ['host1', 'patch', 'post-empty', 0, 'patching\npatched'],
      ['host2', 'drain', 'pre-empty', 0, 'draining'],
      ['host2', 'patch', 'post-empty', 0, 'patching\npatched'],
    ]);
  });

  it('stops before the reboot when the post-empty hook fails: host re-enabled, cluster restored', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6, haEnabled: true, autoPoweron: true });
    const { stateDir, hooksFile } = testStateDir({ patch: { command: 'echo patching; exit 3' } });
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json', '--post-empty-hook', 'patch'], {
      STATE_DIR: stateDir,
      HOOKS_FILE: hooksFile as string,
    });
    expect(run.code).toBe(1);

    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({});
    expect(lab.log.ofKind('host.reboot_requested')).toEqual([]);
    expect(execsOf(lab, 'echo patching; exit 3').map((op) => [op.host, op.detail?.exitCode])).toEqual([
      ['host1', 3],
    ]);
    const host1 = lab.log.entries().filter((op) => op.host === 'host1' && op.kind.startsWith('host.'));
    expect(host1.map((op) => op.kind)).toEqual(['host.disabled', 'host.enabled']);
    expect(lab.log.entries().filter((op) => op.kind === 'host.disabled' && op.host !== 'host1')).toEqual([]);
    expect(lab.model.pool.haEnabled).toBe(true);
    expect(lab.model.pool.otherConfig.auto_poweron).toBe('true');
    expect(lab.cloudstack.managedState()).toBe('Managed');

    const hook = run.events.find((e) => e.type === 'hook_finished');
    expect(hook).toMatchObject({
      host: 'host1',
      hook: 'patch',
      phase: 'post-empty',
      exitCode: 3,
      output: 'patching',
    });
    const failed = eventsOf(run, 'failed')[0];
    expect(failed?.reason).toBe('the post-empty hook patch failed on host1 (exit 3)');
    expect(failed?.error).toEqual(['HOOK_FAILED', 'patch', '3', 'patching']);
    expect(run.events.at(-1)).toMatchObject({ type: 'outcome', status: 'failed', exitCode: 1 });
  });
});
