import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { eventsOf, runCliAgainst, startTestLab, testStateDir } from '../support/lab-cli.js';

let lab: Lab | undefined;
afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

describe('reboot-cluster against the lab', () => {
  it('reboots a 3-host cluster with HA and auto_poweron on, every invariant held', async () => {
    lab = await startTestLab({ hosts: 3, vms: 9 });
    const { stateDir } = testStateDir();
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
    const [plan] = eventsOf(run, 'plan');
    expect(report.migrations).toBe(plan?.plan.optimalMigrations);
  });
});
