/**
 * Stopping a run part-way: Ctrl-C (abort at the next safe point, cluster restored, exit 4) and a
 * crash (the CLI process SIGKILLed), after which the same command resumes from the checkpoint
 * without rebooting any host twice (I7).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import type { Operation } from '../../lab/operation-log.js';
import { GiB } from '../../lab/pool-generator.js';
import {
  eventsOf,
  FAST_ENGINE_ENV,
  runCliAgainst,
  startCli,
  startTestLab,
  testStateDir,
} from '../support/lab-cli.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

let lab: Lab | undefined;
const children = new Set<ChildProcess>();
afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  await lab?.stop();
  lab = undefined;
});

/**
 * Runs the real CLI as its own process and SIGKILLs it the moment the lab records an operation
 * matching `killWhen`. Resolves once the process is gone, with the JSON events it wrote.
 */
async function runUntilKilled(
  current: Lab,
  stateDir: string,
  killWhen: (op: Operation) => boolean,
): Promise<{ signal: NodeJS.Signals | null; events: Array<{ type: string } & Record<string, unknown>> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'CLUSTER-1', '--exec', '--json'], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', ...current.env(), ...FAST_ENGINE_ENV, STATE_DIR: stateDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const unsubscribe = current.log.subscribe((op) => {
    if (killWhen(op)) child.kill('SIGKILL');
  });
  const [code, signal] = (await new Promise((resolve) => child.once('exit', (...args) => resolve(args)))) as [
    number | null,
    NodeJS.Signals | null,
  ];
  unsubscribe();
  children.delete(child);
  if (signal !== 'SIGKILL') throw new Error(`the CLI exited by itself (code ${code}): ${stderr}${stdout}`);
  const events = stdout
    .split('\n')
    .slice(0, -1) // whatever follows the last newline may be a line cut short by the kill
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
  return { signal, events };
}

describe('abort', () => {
  it('Ctrl-C while host2 is being emptied: exit 4, host2 back in service, cluster restored', async () => {
    lab = await startTestLab({ hosts: 3, vms: 12, haEnabled: true, autoPoweron: true });
    const host2Ref = lab.model.hostByName('host2').ref;
    const { stateDir } = testStateDir();
    const cli = startCli(lab, ['CLUSTER-1', '--exec', '--json', '--threads', '1'], { STATE_DIR: stateDir });
    let interruptedAt = 0;
    const unsubscribe = lab.log.subscribe((op) => {
      if (op.kind === 'vm.migration_started' && op.host === 'host2' && interruptedAt === 0) {
        interruptedAt = op.seq;
        cli.interrupt();
      }
    });
    const run = await cli.done;
    unsubscribe();
    expect(interruptedAt).toBeGreaterThan(0);
    expect(run.code).toBe(4);

    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1 });
    expect(lab.model.hostByName('host2').enabled).toBe(true);
    // The migration in flight finished; no new one started after the abort was seen.
    const startedAfter = lab.log.ofKind('vm.migration_started').filter((op) => op.seq > interruptedAt);
    expect(startedAfter).toEqual([]);
    expect(lab.model.residentGuests(host2Ref).length).toBeGreaterThan(0);
    expect(lab.log.entries().filter((op) => op.host === 'host3' && op.kind === 'host.disabled')).toEqual([]);

    const types = run.events.map((e) => e.type);
    expect(types).toContain('abort_requested');
    expect(run.events.filter((e) => e.type === 'host_rebooting').map((e) => e.host)).toEqual(['host1']);
    expect(run.events.find((e) => e.type === 'aborted')).toMatchObject({ hostsDone: ['host1'] });
    expect(run.events.at(-1)).toMatchObject({ type: 'outcome', status: 'aborted', exitCode: 4 });
    expect(run.stderr).toContain('Abort requested: stopping at the next safe point');
    expect(existsSync(join(stateDir, 'CLUSTER-1.checkpoint.json'))).toBe(false);
  });
});

describe('abort during a reboot', () => {
  it('lets host2 come back and be enabled first (the next safe point), then restores: exit 4', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6, haEnabled: true, autoPoweron: true });
    const cli = startCli(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: testStateDir().stateDir });
    const unsubscribe = lab.log.subscribe((op) => {
      if (op.kind === 'host.reboot_requested' && op.host === 'host2') cli.interrupt();
    });
    const run = await cli.done;
    unsubscribe();
    expect(run.code).toBe(4);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1 });
    expect(lab.log.entries().filter((op) => op.host === 'host3' && op.kind === 'host.disabled')).toEqual([]);
    expect(eventsOf(run, 'host_done').map((e) => e.host)).toEqual(['host1', 'host2']);
    expect(eventsOf(run, 'aborted')[0]).toMatchObject({ hostsDone: ['host1', 'host2'] });
    // The abort is restored after host2 is back, never while it is down.
    const kinds = lab.log.entries().map((op) => `${op.kind} ${op.host ?? ''}`);
    expect(kinds.indexOf('pool.ha_enabled ')).toBeGreaterThan(kinds.indexOf('host.came_up host2'));
  });
});

describe('hard stop (Ctrl-C twice)', () => {
  it('stops at once while host2 is being emptied; the same command then resumes and finishes', async () => {
    // host2's NIC is slow (its one VM takes about 2 s to leave it): the migration in flight at the
    // stop is still going when the run resumes.
    const host = (name: string, nicBytesPerSecond: number) => ({
      name,
      memoryBytes: 32 * GiB,
      nicBytesPerSecond,
    });
    lab = await startTestLab({
      spec: {
        hosts: [host('host1', 1.25e9), host('host2', 1e7), host('host3', 1.25e9)],
        vms: [
          { name: 'vm01', memoryBytes: 2 * GiB, host: 1 },
          { name: 'vm02', memoryBytes: 2 * GiB, host: 2 },
        ],
        autoPoweronVms: [],
      },
    });
    const { stateDir } = testStateDir();
    const cli = startCli(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
    let inFlight: Operation | undefined;
    const unsubscribe = lab.log.subscribe((op) => {
      if (op.kind === 'vm.migration_started' && op.host === 'host2' && !inFlight) {
        inFlight = op;
        cli.interrupt();
        cli.interrupt();
      }
    });
    const stopped = await cli.done;
    unsubscribe();
    const stoppedAt = inFlight?.seq ?? Number.POSITIVE_INFINITY;
    expect(stopped.code).toBe(1);
    expect(lab.checkInvariants({ expectRestored: false }).violations).toEqual([]);
    expect(lab.model.hostByName('host2').enabled).toBe(false);
    const attention = eventsOf(stopped, 'needs_attention')[0];
    expect(attention).toMatchObject({ host: 'host2', reason: 'stopped at once (hard stop)' });
    expect(attention?.leftChanged).toContain('host2 is disabled in XAPI (not yet rebooted)');
    expect(attention?.leftChanged).toContain('run the same command again to resume from the checkpoint');
    expect(stopped.events.at(-1)).toMatchObject({ type: 'outcome', status: 'stopped', exitCode: 1 });
    // A live migration cannot be stopped half-way: it is still going.
    expect(lab.model.vmByName(inFlight?.vm ?? '').migratingTo).toBeDefined();

    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(eventsOf(run, 'run_started')[0]).toMatchObject({ resumed: true });
    expect(eventsOf(run, 'host_done').map((e) => e.host)).toEqual(['host2', 'host3']);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
    // The resumed run met the migration left going, waited for it, and did not send the VM elsewhere.
    const busy = eventsOf(run, 'migration_failed').filter((e) => e.vm === inFlight?.vm);
    expect(busy.length).toBeGreaterThan(0);
    expect(busy.every((e) => e.error[0] === 'OTHER_OPERATION_IN_PROGRESS')).toBe(true);
    const moves = lab.log.ofKind('vm.migrated').filter((op) => op.vm === inFlight?.vm && op.seq > stoppedAt);
    expect(moves.map((op) => op.detail?.to)).toEqual([inFlight?.detail?.to]);
  });
});

describe('resume after a crash', () => {
  it('resumes a run killed while host2 was coming back, without rebooting it again', async () => {
    lab = await startTestLab({ hosts: 3, vms: 9, haEnabled: true, autoPoweron: true });
    const { stateDir } = testStateDir();
    const killed = await runUntilKilled(
      lab,
      stateDir,
      (op) => op.kind === 'host.came_up' && op.host === 'host2',
    );
    expect(killed.events.filter((e) => e.type === 'host_done').map((e) => e.host)).toEqual(['host1']);
    expect(existsSync(join(stateDir, 'CLUSTER-1.checkpoint.json'))).toBe(true);
    const rebootsBefore = lab.checkInvariants({ expectRestored: false }).reboots;
    expect(rebootsBefore).toEqual({ host1: 1, host2: 1 });

    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.events.find((e) => e.type === 'run_started')).toMatchObject({ resumed: true });
    // host2 is waited for again (it is already back), not emptied or rebooted again.
    expect(run.events.filter((e) => e.type === 'host_rebooting').map((e) => e.host)).toEqual(['host3']);
    expect(run.events.filter((e) => e.type === 'host_done').map((e) => e.host)).toEqual(['host2', 'host3']);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
    expect(existsSync(join(stateDir, 'CLUSTER-1.checkpoint.json'))).toBe(false);
  });

  it('resumes a run killed just after it disabled host3, finishing every host exactly once', async () => {
    lab = await startTestLab({ hosts: 3, vms: 9, haEnabled: true, autoPoweron: true });
    const { stateDir } = testStateDir();
    const killed = await runUntilKilled(
      lab,
      stateDir,
      (op) => op.kind === 'host.disabled' && op.host === 'host3',
    );
    expect(killed.events.filter((e) => e.type === 'host_done').map((e) => e.host)).toEqual([
      'host1',
      'host2',
    ]);
    expect(lab.model.hostByName('host3').enabled).toBe(false);

    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.events.find((e) => e.type === 'run_started')).toMatchObject({ resumed: true });
    expect(run.events.filter((e) => e.type === 'host_done').map((e) => e.host)).toEqual(['host3']);
    // host3 is disabled by this run, not by "someone else": the resumed pre-flight must know it.
    const preflight = eventsOf(run, 'preflight')[0];
    expect(preflight?.findings.filter((f) => f.severity === 'blocker')).toEqual([]);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
    expect(lab.log.ofKind('pool.ha_disabled')).toHaveLength(1);
    expect(lab.log.ofKind('pool.ha_enabled')).toHaveLength(1);
  });
});
