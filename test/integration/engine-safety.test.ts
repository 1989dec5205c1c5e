/**
 * Safety cases from review: a second host out of service (I2), and a resume while the cluster is
 * still unreachable (I6: it needs a human, it is never "refused, nothing changed").
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { eventsOf, runCliAgainst, startTestLab, testStateDir } from '../support/lab-cli.js';

let lab: Lab | undefined;
afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

describe('safety', () => {
  it('never takes a host out of service while another one is (someone disabled host3 mid-run)', async () => {
    lab = await startTestLab({ hosts: 3, vms: 6 });
    const outsider = lab;
    const unsubscribe = lab.log.subscribe((op) => {
      // Right after host1 is back, someone else disables host3 by hand.
      if (op.kind === 'host.came_up' && op.host === 'host1') {
        outsider.model.disableHost(outsider.model.hostByName('host3').ref);
        unsubscribe();
      }
    });
    const { stateDir } = testStateDir();
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], { STATE_DIR: stateDir });
    expect(run.code).toBe(1);
    const [failed] = eventsOf(run, 'failed');
    expect(failed?.error).toEqual(['HOST_OUT_OF_SERVICE', 'host3']);
    expect(
      lab.log
        .entries()
        .filter((op) => op.kind === 'host.disabled')
        .map((op) => op.host),
    ).toEqual(['host1', 'host3']);
    // The run restored what it had changed; host3 stays as the outsider left it.
    lab.model.enableHost(lab.model.hostByName('host3').ref);
    const report = lab.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1 });
  });

  it('a resume while the pool master is still down needs attention and keeps the checkpoint', async () => {
    lab = await startTestLab({ hosts: 2, vms: 4 });
    lab.faults.hostNeverComesBack('host1');
    const { stateDir } = testStateDir();
    const env = { STATE_DIR: stateDir, HOST_REBOOT_TIMEOUT_SECONDS: '2', XAPI_LOGIN_TIMEOUT_SECONDS: '2' };
    const first = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], env);
    expect(first.code).toBe(1);
    expect(eventsOf(first, 'needs_attention')[0]?.host).toBe('host1');

    const again = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], env);
    expect(again.code).toBe(1);
    const [attention] = eventsOf(again, 'needs_attention');
    expect(attention?.leftChanged).toEqual(
      expect.arrayContaining([
        'host1 was rebooting and is not confirmed back; it is disabled until it is',
        'CloudStack cluster CLUSTER-1 is Unmanaged (was Managed)',
      ]),
    );
    const outcome = again.events.find((e) => e.type === 'outcome');
    expect(outcome?.status).toBe('needs_attention');
    const report = lab.checkInvariants({ expectRestored: false });
    expect(report.violations).toEqual([]);
    expect(report.reboots).toEqual({ host1: 1 });
  });
});
