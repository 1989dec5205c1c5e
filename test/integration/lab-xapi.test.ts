/**
 * The lab's XAPI over real sockets: our client, the plain npm `xmlrpc` client and Python's standard
 * `xmlrpc.client` all talk to it as to a real pool, and it enforces xapi's rules with xapi's errors.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab, LabOptions } from '../../lab/lab.js';
import { GiB, MiB, type PoolSpec, type VmSpec } from '../../lab/pool-generator.js';
import type { LabTimings } from '../../lab/pool-model.js';
import { TIMING_PRESETS } from '../../lab/timing-presets.js';
import { SshConnectError, SshHostKeyChangedError, XapiError } from '../../src/errors.js';
import { probeSsh, type SshTarget } from '../../src/ssh/client.js';
import { XapiClient } from '../../src/xapi/client.js';
import { XapiPool } from '../../src/xapi/pool-api.js';
import { startTestLab } from '../support/lab-cli.js';
import { nextOperation, until, waitForOperation } from '../support/lab-waits.js';
import { RawXapiFailure, RawXapiSession, rawXapiCall } from '../support/raw-xapi.js';

const run = promisify(execFile);
const OPAQUE_REF = /^OpaqueRef:[0-9a-f-]{36}$/;
const DECIMAL = /^\d+$/;

let lab: Lab | undefined;
const clients: XapiClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) await client.logout();
  await lab?.stop();
  lab = undefined;
});

/** A pool shape; `vms` entries are `[name, GiB, host index, extra]`. */
function poolSpec(hostGiB: number[], vms: Array<[string, number, number, Partial<VmSpec>?]>): PoolSpec {
  return {
    hosts: hostGiB.map((gib, i) => ({
      name: `host${i + 1}`,
      memoryBytes: gib * GiB,
      nicBytesPerSecond: 1.25e9,
    })),
    vms: vms.map(([name, gib, host, extra]) => ({ name, memoryBytes: gib * GiB, host, ...extra })),
    autoPoweronVms: [],
  };
}

/** host1 (the master), host3 and host4 empty; every VM on host2. */
const EMPTY_BUT_HOST2 = poolSpec(
  [64, 64, 64, 64],
  [
    ['vm01', 4, 1],
    ['vm02', 8, 1],
    ['vm03', 2, 1],
  ],
);

async function start(options: LabOptions, timings: Partial<LabTimings> = {}): Promise<Lab> {
  lab = await startTestLab({ ...options, timings: { ...TIMING_PRESETS.fast, ...timings } });
  return lab;
}

async function connect(at: Lab, addresses = [address(at, 'host1')]): Promise<XapiPool> {
  const client = await XapiClient.connect({
    hosts: addresses,
    port: at.info.xapi.port,
    protocol: 'http',
    username: at.info.xapi.username,
    password: at.info.xapi.password,
    callTimeoutMs: 3_000,
    loginTimeoutMs: 10_000,
    taskPollIntervalMs: 20,
  });
  clients.push(client);
  return new XapiPool(client);
}

function address(at: Lab, hostName: string): string {
  return at.model.hostByName(hostName).address;
}

function rawLogin(at: Lab, hostName = 'host1'): Promise<RawXapiSession> {
  return RawXapiSession.login(address(at, hostName), at.info.xapi.port, at.info.xapi);
}

function sshTarget(at: Lab, hostName: string): SshTarget {
  return {
    host: address(at, hostName),
    port: at.info.ssh.port,
    username: at.info.ssh.username,
    privateKey: readFileSync(at.info.ssh.privateKeyFile),
    knownHosts: readFileSync(at.info.ssh.knownHostsFile, 'utf8'),
    timeoutMs: 3_000,
  };
}

/** The XapiError a promise must reject with. */
async function xapiErrorOf(promise: Promise<unknown>): Promise<XapiError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(XapiError);
  return error as XapiError;
}

/** True when nothing listens on address:port any more (the host is off). */
function refuses(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(1_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

async function sshRefused(at: Lab, hostName: string): Promise<boolean> {
  return probeSsh(sshTarget(at, hostName)).then(
    () => false,
    (error: unknown) => error instanceof SshConnectError && /connection refused/.test(error.message),
  );
}

/** Reboots an empty host the way an operator does: disable, then reboot. */
async function disableAndReboot(pool: XapiPool, at: Lab, hostName: string): Promise<void> {
  const ref = at.model.hostByName(hostName).ref;
  await pool.disableHost(ref);
  await pool.rebootHost(ref);
}

/** Waits until the host has come back and its XAPI answers again (a member answers HOST_IS_SLAVE). */
async function backUp(at: Lab, hostName: string): Promise<void> {
  await waitForOperation(
    at.log,
    (op) => op.kind === 'host.came_up' && op.host === hostName,
    `${hostName} to come back`,
  );
  await until(
    async () => !(await refuses(address(at, hostName), at.info.xapi.port)),
    `XAPI on ${hostName} listens again`,
  );
}

describe('logging in', () => {
  it('follows HOST_IS_SLAVE from a member to the master with only the member address given', async () => {
    const at = await start({ hosts: 3, vms: 3 });
    const pool = await connect(at, [address(at, 'host2')]);

    expect(pool.masterAddress).toBe(address(at, 'host1'));
    expect(pool.client.knownAddresses).toEqual(
      expect.arrayContaining(['host1', 'host2', 'host3'].map((h) => address(at, h))),
    );
    const logins = at.log
      .ofKind('xapi.call')
      .filter((op) => op.detail?.method === 'session.login_with_password')
      .map((op) => op.host);
    expect(logins).toEqual(['host2', 'host1']);
    expect(at.log.ofKind('xapi.login')).toHaveLength(1);
    expect((await pool.getHosts()).map((h) => h.nameLabel).sort()).toEqual(['host1', 'host2', 'host3']);
  });
});

describe('any XML-RPC client', () => {
  it('the npm xmlrpc client: HOST_IS_SLAVE on a member, then XAPI field names and wire types on the master', async () => {
    const at = await start({ hosts: 3, vms: 4, haEnabled: true, autoPoweron: true });
    const port = at.info.xapi.port;
    const credentials = [at.info.xapi.username, at.info.xapi.password];

    const onMember = await rawXapiCall(
      address(at, 'host3'),
      port,
      'session.login_with_password',
      credentials,
    );
    expect(onMember).toEqual({
      Status: 'Failure',
      ErrorDescription: ['HOST_IS_SLAVE', address(at, 'host1')],
    });

    const login = await rawXapiCall(address(at, 'host1'), port, 'session.login_with_password', credentials);
    expect(login.Status).toBe('Success');
    expect(login.Value).toMatch(OPAQUE_REF);
    const session = await rawLogin(at);

    const pools = await session.call<Record<string, Record<string, unknown>>>('pool.get_all_records');
    const [[poolRef, pool] = []] = Object.entries(pools);
    expect(Object.keys(pools)).toHaveLength(1);
    expect(poolRef).toMatch(OPAQUE_REF);
    expect(pool).toMatchObject({
      name_label: 'CLUSTER-1',
      master: at.model.hostByName('host1').ref,
      ha_enabled: true,
      ha_host_failures_to_tolerate: '1',
      other_config: { auto_poweron: 'true' },
    });
    expect(pool?.ha_statefiles).toEqual([expect.stringMatching(OPAQUE_REF)]);

    const hosts = await session.call<Record<string, Record<string, unknown>>>('host.get_all_records');
    expect(Object.keys(hosts)).toHaveLength(3);
    for (const [ref, host] of Object.entries(hosts)) {
      const model = at.model.hostByName(String(host.name_label));
      expect(ref).toBe(model.ref);
      expect(host).toMatchObject({
        address: model.address,
        hostname: model.name,
        enabled: true,
        metrics: expect.stringMatching(OPAQUE_REF),
        control_domain: expect.stringMatching(OPAQUE_REF),
        API_version_major: '2',
        software_version: expect.objectContaining({ product_version: expect.any(String) }),
        other_config: expect.objectContaining({ agent_start_time: expect.stringMatching(/^\d+(\.\d+)?$/) }),
      });
      expect(Number((host.other_config as Record<string, string>).agent_start_time)).toBeCloseTo(
        model.agentStartTime,
        2,
      );
      expect(host.resident_VMs).toContain(model.controlDomainRef);
    }

    const metrics = await session.call<Record<string, Record<string, unknown>>>(
      'host_metrics.get_all_records',
    );
    for (const host of at.model.hosts) {
      const record = metrics[host.metricsRef];
      expect(record).toMatchObject({ live: true, memory_total: String(host.memoryTotal) });
      expect(record?.memory_free).toMatch(DECIMAL);
      expect(record?.last_updated).toBeInstanceOf(Date);
    }
    // 64 GiB does not fit an XML-RPC <int>: int64 must travel as a decimal string.
    expect(Number(metrics[at.model.hosts[0]?.metricsRef ?? '']?.memory_total)).toBeGreaterThan(2 ** 32);

    const vms = await session.call<Record<string, Record<string, unknown>>>('VM.get_all_records');
    const byName = new Map(Object.values(vms).map((vm) => [String(vm.name_label), vm]));
    const running = at.model.guestVms().filter((vm) => vm.powerState === 'Running');
    expect(running).toHaveLength(4);
    for (const vm of running) {
      expect(byName.get(vm.name)).toMatchObject({
        power_state: 'Running',
        resident_on: vm.residentOn,
        is_control_domain: false,
        is_a_template: false,
        memory_static_max: String(vm.memoryStaticMax),
        memory_overhead: String(vm.memoryOverhead),
        ha_restart_priority: 'restart',
      });
    }
    expect(byName.get('autostart01')).toMatchObject({
      power_state: 'Halted',
      resident_on: 'OpaqueRef:NULL',
      other_config: { auto_poweron: 'true' },
    });
    const template = Object.values(vms).find((vm) => vm.is_a_template === true);
    expect(template).toMatchObject({ power_state: 'Halted', resident_on: 'OpaqueRef:NULL', domid: '-1' });
    const dom0s = Object.values(vms).filter((vm) => vm.is_control_domain === true);
    expect(dom0s).toHaveLength(3);
  });

  it("Python's standard xmlrpc.client logs in at the master and reads host.get_all_records", async () => {
    const at = await start({ hosts: 2, vms: 2 });
    const script = [
      'import json, os, socket, sys, xmlrpc.client',
      'socket.setdefaulttimeout(5)',
      'proxy = xmlrpc.client.ServerProxy(sys.argv[1])',
      "login = proxy.session.login_with_password(os.environ['XAPI_USERNAME'], os.environ['XAPI_PASSWORD'])",
      "if login['Status'] != 'Success': sys.exit('login failed: %r' % (login,))",
      "print(json.dumps(proxy.host.get_all_records(login['Value']), default=str))",
    ].join('\n');
    const { stdout } = await run(
      'python3',
      ['-I', '-c', script, `http://${address(at, 'host1')}:${at.info.xapi.port}/`],
      {
        timeout: 10_000,
        env: { PATH: process.env.PATH ?? '', ...at.env() },
      },
    );
    const answer = JSON.parse(stdout) as { Status: string; Value: Record<string, Record<string, unknown>> };
    expect(answer.Status).toBe('Success');
    expect(Object.keys(answer.Value).sort()).toEqual(at.model.hosts.map((h) => h.ref).sort());
    for (const host of at.model.hosts) {
      expect(answer.Value[host.ref]).toMatchObject({
        name_label: host.name,
        address: host.address,
        enabled: true,
        API_version_major: '2',
      });
    }
    expect(at.log.ofKind('xapi.login')).toHaveLength(1);
  });
});

describe('a master reboot', () => {
  it('invalidates every session: the old ref gets SESSION_INVALID, XapiClient logs in again by itself', async () => {
    const at = await start({ spec: EMPTY_BUT_HOST2 });
    const pool = await connect(at);
    const raw = await rawLogin(at);
    expect(await raw.call('pool.get_all')).toHaveLength(1);

    await disableAndReboot(pool, at, 'host1');
    await backUp(at, 'host1');

    let answer: string[] | undefined;
    await until(async () => {
      try {
        await raw.call('pool.get_all');
        answer = ['(success)'];
      } catch (error) {
        if (!(error instanceof RawXapiFailure) || error.xapiCode === 'HOST_STILL_BOOTING') return false;
        answer = error.description;
      }
      return true;
    }, 'the rebooted master answers');
    expect(answer).toEqual(['SESSION_INVALID', raw.session]);

    const loginsBefore = at.log.ofKind('xapi.login').length;
    const hosts = await pool.getHosts();
    expect(hosts.find((h) => h.nameLabel === 'host1')?.enabled).toBe(true);
    expect(at.log.ofKind('xapi.login')).toHaveLength(loginsBefore + 1);
    expect(at.log.ofKind('xapi.sessions_invalidated')).toEqual([
      expect.objectContaining({ detail: { reason: 'master went down' } }),
    ]);
  });
});

describe('typed errors with the real parameters', () => {
  // host1: big (10 GiB), small and local (on host1's local SR); host2 nearly full; host3 empty.
  const spec = poolSpec(
    [16, 16, 16],
    [
      ['big', 10, 0],
      ['small', 1, 0],
      ['local', 1, 0, { onLocalSr: true }],
      ['filler', 8, 1],
    ],
  );

  it('answers every refusal as XapiError with xapi code and parameters verbatim', async () => {
    const at = await start({ spec, haEnabled: false });
    const pool = await connect(at);
    const [host1, host2, host3] = ['host1', 'host2', 'host3'].map((h) => at.model.hostByName(h));
    if (!host1 || !host2 || !host3) throw new Error('three hosts expected');
    const vm = (name: string) => at.model.vmByName(name);

    const notDisabled = await xapiErrorOf(pool.rebootHost(host3.ref));
    expect([notDisabled.xapiCode, notDisabled.params]).toEqual(['HOST_NOT_DISABLED', []]);
    expect(notDisabled.method).toBe('host.reboot');

    const needed = 10 * GiB + 80 * MiB;
    const available = 16 * GiB - 4 * GiB - (8 * GiB + 64 * MiB);
    expect([at.model.vmFootprint(vm('big')), at.model.freeMemory(host2.ref)]).toEqual([needed, available]);
    const noMemory = await xapiErrorOf(pool.poolMigrate(vm('big').ref, host2.ref, { timeoutMs: 3_000 }));
    expect([noMemory.xapiCode, noMemory.params]).toEqual([
      'HOST_NOT_ENOUGH_FREE_MEMORY',
      [String(needed), String(available)],
    ]);

    await pool.disableHost(host3.ref);
    const disabled = await xapiErrorOf(pool.client.call('VM.pool_migrate', [vm('small').ref, host3.ref, {}]));
    expect([disabled.xapiCode, disabled.params]).toEqual(['HOST_DISABLED', [host3.ref]]);
    // assert_can_boot_here checks the host before the VM's storage.
    const disabledFirst = await xapiErrorOf(
      pool.client.call('VM.pool_migrate', [vm('local').ref, host3.ref, {}]),
    );
    expect([disabledFirst.xapiCode, disabledFirst.params]).toEqual(['HOST_DISABLED', [host3.ref]]);
    await pool.enableHost(host3.ref);

    const localSr = host1.localSrRef;
    const requiresSr = await xapiErrorOf(
      pool.client.call('VM.pool_migrate', [vm('local').ref, host3.ref, {}]),
    );
    expect([requiresSr.xapiCode, requiresSr.params]).toEqual(['VM_REQUIRES_SR', [vm('local').ref, localSr]]);
    const blockers = await pool.getVmsWhichPreventEvacuation(host1.ref);
    expect(Object.fromEntries(blockers)).toEqual({
      [vm('local').ref]: ['VM_REQUIRES_SR', vm('local').ref, localSr],
    });

    const unknown = await xapiErrorOf(pool.client.call('host.frobnicate', [host1.ref]));
    expect([unknown.xapiCode, unknown.params]).toEqual(['MESSAGE_METHOD_UNKNOWN', ['host.frobnicate']]);
    const badRef = await xapiErrorOf(pool.getHost('OpaqueRef:00000000-0000-0000-0000-000000000000'));
    expect([badRef.xapiCode, badRef.params]).toEqual([
      'HANDLE_INVALID',
      ['host', 'OpaqueRef:00000000-0000-0000-0000-000000000000'],
    ]);

    // Nothing moved and nothing rebooted: every refusal changed nothing.
    expect(vm('big').residentOn).toBe(host1.ref);
    expect(vm('small').residentOn).toBe(host1.ref);
    expect(at.log.ofKind('vm.migration_started')).toEqual([]);
    expect(at.log.ofKind('host.reboot_requested')).toEqual([]);
  });

  it('carries int64 memory figures over 4 GiB through the client unchanged', async () => {
    const at = await start({ hosts: 3, vms: 6 });
    const pool = await connect(at);
    const metrics = await pool.getHostMetrics();
    for (const host of at.model.hosts) {
      expect(metrics.get(host.metricsRef)).toMatchObject({
        live: true,
        memoryTotal: host.memoryTotal,
        memoryFree: at.model.freeMemory(host.ref),
      });
      expect(await pool.computeFreeMemory(host.ref)).toBe(at.model.freeMemory(host.ref));
    }
    const vms = await pool.getVms();
    for (const vm of at.model.guestVms()) {
      expect(vms.find((r) => r.ref === vm.ref)).toMatchObject({
        memoryStaticMax: vm.memoryStaticMax,
        memoryOverhead: vm.memoryOverhead,
      });
    }
    expect(Math.max(...at.model.guestVms().map((vm) => vm.memoryStaticMax))).toBeGreaterThan(4 * GiB);
  });
});

describe('Async.VM.pool_migrate', () => {
  it('moves the VM through a task that is destroyed afterwards', async () => {
    const at = await start({ spec: EMPTY_BUT_HOST2 }, { migrationOverheadMs: 300 });
    const pool = await connect(at);
    const raw = await rawLogin(at);
    const vm = at.model.vmByName('vm02');
    const host3 = at.model.hostByName('host3');

    const started = waitForOperation(at.log, (op) => op.kind === 'vm.migration_started', 'the migration');
    const migration = pool.poolMigrate(vm.ref, host3.ref, { timeoutMs: 5_000 });
    await started;
    const during = await raw.call<Record<string, Record<string, unknown>>>('task.get_all_records');
    const tasks = Object.entries(during);
    expect(tasks).toHaveLength(1);
    const [[taskRef, task] = []] = tasks;
    expect(task).toMatchObject({
      name_label: 'Async.VM.pool_migrate',
      status: 'pending',
      resident_on: at.model.hostByName('host1').ref,
    });

    await migration;
    expect(vm.residentOn).toBe(host3.ref);
    expect((await pool.getVms()).find((r) => r.ref === vm.ref)?.residentOn).toBe(host3.ref);
    expect(at.log.ofKind('vm.migrated')).toEqual([
      expect.objectContaining({
        vm: 'vm02',
        host: 'host2',
        detail: expect.objectContaining({ to: 'host3' }),
      }),
    ]);
    const after = await raw.call<Record<string, unknown>>('task.get_all_records');
    expect(Object.keys(after)).not.toContain(taskRef);
    expect(await raw.failure('task.get_record', taskRef)).toEqual(['HANDLE_INVALID', 'task', taskRef]);
  });
});

describe('host.reboot', () => {
  it('returns at once; XAPI and SSH go away, then come back with a newer agent start time and boot id', async () => {
    const at = await start({ spec: EMPTY_BUT_HOST2 }, { rebootDelayMs: 400, bootMs: 600 });
    const pool = await connect(at);
    const host = at.model.hostByName('host3');
    const { bootId: bootBefore } = await probeSsh(sshTarget(at, 'host3'));
    const agentBefore = (await pool.getHost(host.ref)).agentStartTime ?? Number.NaN;

    await disableAndReboot(pool, at, 'host3');
    expect(at.log.ofKind('host.reboot_requested').map((op) => op.host)).toEqual(['host3']);
    expect(at.log.ofKind('host.went_down')).toEqual([]);

    await nextOperation(at.log, 'host.went_down', 'host3');
    await until(() => refuses(host.address, at.info.xapi.port), 'XAPI on host3 refuses connections');
    await until(() => sshRefused(at, 'host3'), 'SSH on host3 refuses connections');

    await backUp(at, 'host3');
    const { bootId: bootAfter } = await probeSsh(sshTarget(at, 'host3'));
    expect(bootAfter).not.toBe(bootBefore);
    const after = await pool.getHost(host.ref);
    expect(after.enabled).toBe(true);
    expect(after.agentStartTime).toBeGreaterThan(agentBefore);
    expect((await pool.getHostMetrics()).get(host.metricsRef)?.live).toBe(true);
    const onMember = await rawXapiCall(host.address, at.info.xapi.port, 'session.login_with_password', [
      at.info.xapi.username,
      at.info.xapi.password,
    ]);
    expect(onMember.ErrorDescription).toEqual(['HOST_IS_SLAVE', address(at, 'host1')]);
  });
});

describe('faults', () => {
  it('failMigration: N failures with VM_MIGRATE_FAILED verbatim, then success', async () => {
    const at = await start({ spec: EMPTY_BUT_HOST2 });
    const pool = await connect(at);
    const vm = at.model.vmByName('vm01');
    const [host2, host3] = [at.model.hostByName('host2'), at.model.hostByName('host3')];
    at.faults.failMigration('vm01', 2);

    for (let attempt = 0; attempt < 2; attempt++) {
      const failed = await xapiErrorOf(pool.poolMigrate(vm.ref, host3.ref, { timeoutMs: 3_000 }));
      expect([failed.xapiCode, failed.params]).toEqual([
        'VM_MIGRATE_FAILED',
        [vm.ref, host2.ref, host3.ref, 'Lab: injected migration failure'],
      ]);
      expect(vm.residentOn).toBe(host2.ref);
    }
    await pool.poolMigrate(vm.ref, host3.ref, { timeoutMs: 3_000 });
    expect(vm.residentOn).toBe(host3.ref);
    expect(at.log.ofKind('vm.migration_failed')).toHaveLength(2);
    expect(at.log.ofKind('vm.migrated')).toHaveLength(1);
  });

  it('hostNeverComesBack and xapiNeverComesBack: a host rebooted alongside comes back, they do not', async () => {
    const at = await start({ spec: EMPTY_BUT_HOST2 });
    const pool = await connect(at);
    at.faults.hostNeverComesBack('host3');
    at.faults.xapiNeverComesBack('host1');
    const bootBefore = (await probeSsh(sshTarget(at, 'host1'))).bootId;
    // host4 has the same timings and reboots last: once it is back, the others would be back too.
    await disableAndReboot(pool, at, 'host3');
    await disableAndReboot(pool, at, 'host1');
    await disableAndReboot(pool, at, 'host4');
    await backUp(at, 'host4');

    expect(await refuses(address(at, 'host3'), at.info.xapi.port)).toBe(true);
    expect(await sshRefused(at, 'host3')).toBe(true);

    // The master's xapi stays down: SSH answers with a new boot id, XAPI refuses, members name it.
    expect((await probeSsh(sshTarget(at, 'host1'))).bootId).not.toBe(bootBefore);
    expect(await refuses(address(at, 'host1'), at.info.xapi.port)).toBe(true);
    const onMember = await rawXapiCall(
      address(at, 'host2'),
      at.info.xapi.port,
      'session.login_with_password',
      [at.info.xapi.username, at.info.xapi.password],
    );
    expect(onMember.ErrorDescription).toEqual(['HOST_IS_SLAVE', address(at, 'host1')]);

    const cameUp = at.log.ofKind('host.came_up').map((op) => op.host);
    expect(cameUp).toEqual(['host4']);
    expect(at.log.ofKind('host.ssh_up').map((op) => op.host)).not.toContain('host3');
    expect(at.model.hostByName('host3')).toMatchObject({ live: false, power: 'down' });
    expect(at.model.hostByName('host1')).toMatchObject({ live: false, power: 'booting' });
  });

  it('expireSessions: the old session is refused, XapiClient logs in again transparently', async () => {
    const at = await start({ hosts: 2, vms: 2 });
    const pool = await connect(at);
    const raw = await rawLogin(at);
    at.faults.expireSessions();

    expect(await raw.failure('host.get_all')).toEqual(['SESSION_INVALID', raw.session]);
    expect((await pool.getHosts()).length).toBe(2);
    expect(at.log.ofKind('xapi.login')).toHaveLength(3);
  });

  it('changeHostKeyOnReboot: after the reboot the probe refuses the new host key', async () => {
    const at = await start({ spec: EMPTY_BUT_HOST2 });
    const pool = await connect(at);
    await probeSsh(sshTarget(at, 'host4'));
    at.faults.changeHostKeyOnReboot('host4');

    await disableAndReboot(pool, at, 'host4');
    await nextOperation(at.log, 'host.went_down', 'host4');
    let error: unknown;
    await until(async () => {
      error = await probeSsh(sshTarget(at, 'host4')).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      return !(error instanceof SshConnectError);
    }, 'SSH on host4 answers again');
    expect(error).toBeInstanceOf(SshHostKeyChangedError);
    expect((error as Error).message).toContain(`${address(at, 'host4')}:${at.info.ssh.port} changed`);
    // Another host kept its key.
    await expect(probeSsh(sshTarget(at, 'host3'))).resolves.toMatchObject({ bootId: expect.any(String) });
  });

  it('startVm: a VM started from outside uses memory on its host', async () => {
    const at = await start({ spec: EMPTY_BUT_HOST2 });
    const pool = await connect(at);
    const host3 = at.model.hostByName('host3');
    const freeBefore = await pool.computeFreeMemory(host3.ref);

    at.faults.startVm('host3', 'outsider', 2 * GiB);

    expect(await pool.computeFreeMemory(host3.ref)).toBe(freeBefore - (2 * GiB + 16 * MiB));
    const outsider = (await pool.getVms()).find((vm) => vm.nameLabel === 'outsider');
    expect(outsider).toMatchObject({
      powerState: 'Running',
      residentOn: host3.ref,
      memoryStaticMax: 2 * GiB,
    });
    expect((await pool.getHost(host3.ref)).residentVms).toContain(outsider?.ref);
    expect(at.log.ofKind('vm.started')).toEqual([expect.objectContaining({ vm: 'outsider', host: 'host3' })]);
  });
});
