/**
 * SSH is checked in pre-flight: a host whose key known_hosts does not list refuses --exec before
 * anything changes (not after the first host has been emptied).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { eventsOf, runCliAgainst, startTestLab, testStateDir } from '../support/lab-cli.js';

let lab: Lab | undefined;
afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

describe('pre-flight SSH check', () => {
  it('refuses with exit 3 and changes nothing when known_hosts lacks a host', async () => {
    lab = await startTestLab({ hosts: 3, vms: 3 });
    const { stateDir } = testStateDir();
    const host2 = lab.info.hosts[1]?.address as string;
    const knownHosts = readFileSync(lab.info.ssh.knownHostsFile, 'utf8')
      .split('\n')
      .filter((line) => !line.startsWith(`[${host2}]`))
      .join('\n');
    const partial = join(stateDir, 'known_hosts');
    writeFileSync(partial, knownHosts);

    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--json'], {
      STATE_DIR: stateDir,
      SSH_KNOWN_HOSTS_FILE: partial,
    });
    expect(run.code).toBe(3);
    const findings = eventsOf(run, 'preflight')[0]?.findings ?? [];
    expect(findings.filter((f) => f.code === 'SSH_CHECK_FAILED').map((f) => f.host)).toEqual(['host2']);
    const mutating = lab.log
      .entries()
      .filter((op) => op.kind === 'xapi.call' && op.detail?.readOnly === false);
    expect(mutating).toEqual([]);
    expect(lab.log.ofKind('cloudstack.call').filter((op) => op.detail?.command === 'updateCluster')).toEqual(
      [],
    );
  });
});
