/**
 * The invariant checker judged against violations made on purpose with raw XAPI calls (as a careless
 * operator would), so it is proven able to fail; and a careful manual rolling reboot that it passes.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab, LabOptions } from '../../lab/lab.js';
import { GiB, type PoolSpec } from '../../lab/pool-generator.js';
import { SshConnectError } from '../../src/errors.js';
import { probeSsh } from '../../src/ssh/client.js';
import { startTestLab } from '../support/lab-cli.js';
import { nextOperation, until, waitForOperation } from '../support/lab-waits.js';
import { RawXapiFailure, RawXapiSession } from '../support/raw-xapi.js';

let lab: Lab | undefined;

afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

/** Every VM on host1 (the master); host2 and host3 empty, so they can be rebooted at once. */
const MEMBERS_EMPTY: PoolSpec = {
  hosts: ['host1', 'host2', 'host3'].map((name) => ({
    name,
    memoryBytes: 64 * GiB,
    nicBytesPerSecond: 1.25e9,
  })),
  vms: [
    { name: 'vm01', memoryBytes: 4 * GiB, host: 0 },
    { name: 'vm02', memoryBytes: 8 * GiB, host: 0 },
  ],
  autoPoweronVms: [],
};

async function start(options: LabOptions): Promise<{ at: Lab; xapi: RawXapiSession }> {
  const at = await startTestLab(options);
  lab = at;
  return { at, xapi: await login(at) };
}

function login(at: Lab): Promise<RawXapiSession> {
  return RawXapiSession.login(at.model.masterHost().address, at.info.xapi.port, at.info.xapi);
}

function ref(at: Lab, hostName: string): string {
  return at.model.hostByName(hostName).ref;
}

function probe(at: Lab, hostName: string): Promise<{ bootId: string }> {
  return probeSsh({
    host: at.model.hostByName(hostName).address,
    port: at.info.ssh.port,
    username: at.info.ssh.username,
    privateKey: readFileSync(at.info.ssh.privateKeyFile),
    knownHosts: readFileSync(at.info.ssh.knownHostsFile, 'utf8'),
    timeoutMs: 3_000,
  });
}

function cameUp(at: Lab, hostName: string) {
  return waitForOperation(
    at.log,
    (op) => op.kind === 'host.came_up' && op.host === hostName,
    `${hostName} to come back`,
  );
}

/** Logs in again after a master reboot, once its xapi answers and has finished starting. */
async function loginWhenUp(at: Lab): Promise<RawXapiSession> {
  let session: RawXapiSession | undefined;
  await until(async () => {
    session = await login(at).catch((error: unknown) => {
      if (error instanceof RawXapiFailure && error.xapiCode !== 'HOST_STILL_BOOTING') throw error;
      return undefined;
    });
    return session !== undefined;
  }, 'the master accepts logins again');
  if (!session) throw new Error('unreachable: until() returned without a session');
  return session;
}

describe('the invariant checker catches', () => {
  it('I1 and a lost VM: a host rebooted with VMs still running on it', async () => {
    const { at, xapi } = await start({ hosts: 3, vms: 6 });
    const victims = at.model
      .residentGuests(ref(at, 'host2'))
      .map((vm) => vm.name)
      .sort();
    expect(victims.length).toBeGreaterThan(0);

    await xapi.call('host.disable', ref(at, 'host2'));
    // xapi does not refuse this: only the operator (or the bot) can keep I1.
    await xapi.call('host.reboot', ref(at, 'host2'));
    expect(at.checkInvariants({ expectRestored: false }).violations).toEqual([]);
    await nextOperation(at.log, 'host.went_down', 'host2');

    const report = at.checkInvariants({ expectRestored: false });
    expect(report.ok).toBe(false);
    expect(report.violations).toContainEqual(
      expect.stringMatching(
        new RegExp(`^I1: host2 went down at \\+\\d+ ms with VMs running: ${victims.join(', ')}$`),
      ),
    );
    for (const vm of victims) {
      expect(report.violations).toContainEqual(expect.stringMatching(new RegExp(`^VM lost: ${vm} \\(`)));
    }
    expect(report.reboots).toEqual({ host2: 1 });
  });

  it('I2: two hosts disabled at the same time', async () => {
    const { at, xapi } = await start({ spec: MEMBERS_EMPTY });
    await xapi.call('host.disable', ref(at, 'host2'));
    expect(at.checkInvariants({ expectRestored: false }).violations).toEqual([]);

    await xapi.call('host.disable', ref(at, 'host3'));
    expect(at.checkInvariants({ expectRestored: false }).violations).toEqual([
      expect.stringMatching(/^I2: host2 and host3 out of service together at \+\d+ ms \(host\.disabled\)$/),
    ]);
  });

  it('I3: the next host disabled after the rebooted one came back but before its SSH was checked', async () => {
    const { at, xapi } = await start({ spec: MEMBERS_EMPTY });
    await xapi.call('host.disable', ref(at, 'host2'));
    await xapi.call('host.reboot', ref(at, 'host2'));
    await cameUp(at, 'host2');

    await xapi.call('host.disable', ref(at, 'host3'));
    expect(at.checkInvariants({ expectRestored: false }).violations).toEqual([
      expect.stringMatching(/^I3: host3 was disabled at \+\d+ ms before SSH on host2 was checked$/),
    ]);
  });

  it('I3 (and I2): the next host disabled before the rebooted one came back', async () => {
    const { at, xapi } = await start({ spec: MEMBERS_EMPTY });
    await xapi.call('host.disable', ref(at, 'host2'));
    await xapi.call('host.reboot', ref(at, 'host2'));
    await nextOperation(at.log, 'host.went_down', 'host2');

    await xapi.call('host.disable', ref(at, 'host3'));
    const { violations } = at.checkInvariants({ expectRestored: false });
    expect(violations).toContainEqual(
      expect.stringMatching(/^I3: host3 was disabled at .* before host2 came back$/),
    );
    expect(violations).toContainEqual(expect.stringMatching(/^I2: host2 and host3 out of service together/));
  });

  it('I6: HA and auto_poweron left off at the end, and not once they are restored', async () => {
    const { at, xapi } = await start({ spec: MEMBERS_EMPTY, haEnabled: true, autoPoweron: true });
    const poolRef = at.model.pool.ref;
    const statefiles = await xapi.call<string[]>('pool.get_ha_statefiles', poolRef);
    const heartbeatSrs = await Promise.all(statefiles.map((vdi) => xapi.call<string>('VDI.get_SR', vdi)));
    const configuration = await xapi.call<Record<string, string>>('pool.get_ha_configuration', poolRef);
    expect(at.checkInvariants().violations).toEqual([]);

    await xapi.call('pool.disable_ha');
    await xapi.call('pool.remove_from_other_config', poolRef, 'auto_poweron');
    const [violation, ...others] = at.checkInvariants().violations;
    expect(others).toEqual([]);
    expect(violation).toMatch(
      /^I6: pool state not restored: before .*"haEnabled":true.*, now .*"haEnabled":false/,
    );
    expect(violation).toMatch(/before .*"autoPoweron":"true".*, now (?!.*autoPoweron)/);

    await xapi.call('pool.enable_ha', heartbeatSrs, configuration);
    await xapi.call('pool.add_to_other_config', poolRef, 'auto_poweron', 'true');
    expect(at.checkInvariants().violations).toEqual([]);
  });

  it('I6: a host left disabled', async () => {
    const { at, xapi } = await start({ spec: MEMBERS_EMPTY });
    await xapi.call('host.disable', ref(at, 'host3'));
    expect(at.checkInvariants().violations).toEqual(['I6: hosts left disabled: host3']);
    expect(at.checkInvariants({ expectRestored: false }).violations).toEqual([]);
  });
});

describe('a careful manual rolling reboot', () => {
  it('disable, migrate every VM away, probe SSH, reboot, wait, probe SSH, enable: no violation', async () => {
    const spec: PoolSpec = {
      ...MEMBERS_EMPTY,
      vms: [0, 0, 1, 1, 2, 2].map((host, i) => ({
        name: `vm0${i + 1}`,
        memoryBytes: (2 + (i % 3)) * GiB,
        host,
      })),
    };
    const started = await start({ spec, haEnabled: true, autoPoweron: false });
    const at = started.at;
    let xapi = started.xapi;
    const running = at.model.guestVms().filter((vm) => vm.powerState === 'Running').length;

    for (const name of ['host1', 'host2', 'host3']) {
      const host = at.model.hostByName(name);
      await xapi.call('host.disable', host.ref);
      for (const vm of at.model.residentGuests(host.ref)) {
        const destination = await roomiest(at, xapi, host.ref);
        await xapi.call('VM.pool_migrate', vm.ref, destination, { live: 'true' });
      }
      expect(at.model.residentGuests(host.ref)).toEqual([]);
      const { bootId } = await probe(at, name);
      const wasMaster = host.ref === at.model.pool.master;

      await xapi.call('host.reboot', host.ref);
      await cameUp(at, name);
      let after: { bootId: string } | undefined;
      await until(async () => {
        after = await probe(at, name).catch((error: unknown) => {
          if (error instanceof SshConnectError) return undefined;
          throw error;
        });
        return after !== undefined;
      }, `SSH on ${name} answers`);
      expect(after?.bootId).not.toBe(bootId);
      if (wasMaster) xapi = await loginWhenUp(at);
      await xapi.call('host.enable', host.ref);
      expect(await xapi.call('host.get_enabled', host.ref)).toBe(true);
    }

    const report = at.checkInvariants();
    expect(report.violations).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.reboots).toEqual({ host1: 1, host2: 1, host3: 1 });
    expect(report.migrations).toBeGreaterThanOrEqual(running);
  });
});

/** The enabled host other than `source` with the most free memory, as xapi computes it. */
async function roomiest(at: Lab, xapi: RawXapiSession, source: string): Promise<string> {
  let best: { ref: string; free: number } | undefined;
  for (const host of at.model.hosts) {
    if (host.ref === source || !(await xapi.call<boolean>('host.get_enabled', host.ref))) continue;
    const free = Number(await xapi.call<string>('host.compute_free_memory', host.ref));
    if (!best || free > best.free) best = { ref: host.ref, free };
  }
  if (!best) throw new Error('no enabled host to migrate to');
  return best.ref;
}
