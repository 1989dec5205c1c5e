/**
 * Starts a whole lab: one pool model, one XAPI XML-RPC server and one SSH server per host (each
 * host on its own 127.x.y.z address, all on the same ports as in a real pool), and a CloudStack
 * API server. Returns the handle tests, the demo and `npm run lab` use.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LabCloudStack, startLabCloudStack } from './cloudstack-server.js';
import { runLabScript } from './hook-commands.js';
import { type Baseline, captureBaseline, checkInvariants, type InvariantReport } from './invariants.js';
import { OperationLog } from './operation-log.js';
import { generatePoolSpec, type PoolSpec } from './pool-generator.js';
import { DEFAULT_TIMINGS, type LabTimings, PoolModel } from './pool-model.js';
import { generateHostKey, generateLabSshMaterial } from './ssh-keys.js';
import { type LabSshServer, startLabSshServer } from './ssh-server.js';
import { LabXapi } from './xapi-api.js';
import { createLabXmlRpcServer, type LabXmlRpcServer } from './xmlrpc-server.js';

export interface LabOptions {
  hosts?: number;
  vms?: number;
  seed?: number;
  /** An exact pool instead of a generated one. */
  spec?: PoolSpec;
  clusterName?: string;
  /** First three octets of the lab's addresses, e.g. "127.77.0"; random by default so labs never collide. */
  subnet?: string;
  xapiPort?: number;
  sshPort?: number;
  cloudstackPort?: number;
  timings?: Partial<LabTimings>;
  cloudstackTimings?: { unmanageDelayMs?: number; reconnectDelayMs?: number };
  haEnabled?: boolean;
  autoPoweron?: boolean;
  /** Where keys and known_hosts are written; a fresh temporary directory by default (removed on stop). */
  dir?: string;
}

export interface LabInfo {
  cluster: { name: string; id: string };
  cloudstack: { url: string; apiKey: string; secretKey: string };
  xapi: { protocol: 'http'; port: number; username: string; password: string };
  ssh: { port: number; username: string; privateKeyFile: string; knownHostsFile: string };
  hosts: Array<{ name: string; address: string }>;
  /** What the lab's timings make a migration and a reboot take, for the plan's duration estimate. */
  estimates: { migrationMegabytesPerSecond: number; hostRebootSeconds: number };
}

export interface Lab {
  readonly info: LabInfo;
  readonly model: PoolModel;
  readonly xapi: LabXapi;
  readonly cloudstack: LabCloudStack;
  readonly ssh: ReadonlyMap<string, LabSshServer>;
  readonly log: OperationLog;
  readonly baseline: Baseline;
  /** The environment variables (DESIGN.md section 4 names) that point the bot at this lab. */
  env(): Record<string, string>;
  /** Invariants judged from the operation log; `expectRestored` after a finished or aborted run. */
  checkInvariants(options?: { expectRestored?: boolean }): InvariantReport;
  readonly faults: {
    failMigration(vmName: string, times: number): void;
    hostNeverComesBack(hostName: string): void;
    xapiNeverComesBack(hostName: string): void;
    slowReboot(hostName: string, extraMs: number): void;
    changeHostKeyOnReboot(hostName: string): void;
    expireSessions(): void;
    startVm(hostName: string, vmName: string, memoryBytes: number): void;
  };
  stop(): Promise<void>;
}

export async function startLab(options: LabOptions = {}): Promise<Lab> {
  const spec =
    options.spec ??
    generatePoolSpec({ hosts: options.hosts ?? 4, vms: options.vms ?? 20, seed: options.seed });
  const subnet = options.subnet ?? `127.${randomInt(100, 250)}.${randomInt(0, 256)}`;
  const addresses = spec.hosts.map((_, i) => `${subnet}.${11 + i}`);
  const cloudstackAddress = `${subnet}.1`;
  const clusterName = options.clusterName ?? 'CLUSTER-1';
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'crb-lab-'));
  const log = new OperationLog();
  const timings: LabTimings = { ...DEFAULT_TIMINGS, ...options.timings };
  const credentials = { username: 'root', password: randomBytes(12).toString('base64url') };
  const apiKey = randomBytes(24).toString('base64url');
  const secretKey = randomBytes(32).toString('base64url');

  const model = new PoolModel(spec, addresses, timings, log, {
    poolName: clusterName,
    haEnabled: options.haEnabled ?? true,
    autoPoweron: options.autoPoweron ?? true,
  });
  const xapi = new LabXapi(model, credentials);
  const cleanups: Array<() => Promise<void> | void> = [() => model.stop()];

  try {
    const xapiPort = options.xapiPort || (await freePortOn(addresses));
    const xapiServers = new Map<string, LabXmlRpcServer>();
    for (const host of model.hosts) {
      const server = createLabXmlRpcServer({
        address: host.address,
        port: xapiPort,
        handler: xapi.handlerFor(host),
      });
      await server.start();
      xapiServers.set(host.name, server);
      cleanups.push(() => server.stop());
    }

    const sshPort = options.sshPort || (await freePortOn(addresses));
    const material = generateLabSshMaterial(
      dir,
      model.hosts.map((h) => ({ name: h.name, address: h.address })),
      sshPort,
    );
    const sshServers = new Map<string, LabSshServer>();
    for (const host of model.hosts) {
      const hostKey = material.hostKeys.get(host.name);
      if (!hostKey) throw new Error(`no host key generated for ${host.name}`);
      const server = await startLabSshServer({
        address: host.address,
        port: sshPort,
        hostName: host.name,
        hostKey: hostKey.privateKey,
        authorizedKey: material.clientPublicKey,
        username: 'root',
        bootId: () => host.bootId,
        uptimeSeconds: () => Math.max(0, Math.floor(Date.now() / 1000 - host.bootTime)),
        onExec: runLabScript,
        log,
      });
      sshServers.set(host.name, server);
      cleanups.push(() => server.stop());
    }

    const hostKeyChanges = new Set<string>();
    model.onPowerChange((host, power) => {
      const xapiServer = xapiServers.get(host.name);
      const sshServer = sshServers.get(host.name);
      if (!xapiServer || !sshServer) return;
      const settle = async () => {
        if (power === 'down') {
          await xapiServer.stop();
          await sshServer.setState('down');
        } else if (power === 'booting') {
          if (hostKeyChanges.has(host.name)) await sshServer.replaceHostKey(generateHostKey().privateKey);
          await sshServer.setState('up');
        } else if (power === 'up') {
          await xapiServer.start();
        }
      };
      settle().catch((error: unknown) =>
        log.record({ kind: 'lab.error', host: host.name, detail: { error: String(error) } }),
      );
    });

    const clusterId = randomUUID();
    const cloudstack = await startLabCloudStack({
      address: cloudstackAddress,
      port: options.cloudstackPort ?? 0,
      apiKey,
      secretKey,
      log,
      source: {
        cluster: {
          id: clusterId,
          name: clusterName,
          podId: randomUUID(),
          podName: 'POD-1',
          zoneId: randomUUID(),
          zoneName: 'ZONE-1',
        },
        hosts: () =>
          model.hosts.map((h) => ({
            id: h.uuid,
            name: h.name,
            ipAddress: h.address,
            live: h.live,
            liveChangedAt: h.liveChangedAt,
          })),
      },
      timings: {
        unmanageDelayMs: options.cloudstackTimings?.unmanageDelayMs ?? 1_000,
        reconnectDelayMs: options.cloudstackTimings?.reconnectDelayMs ?? 2_000,
      },
    });
    cleanups.push(() => cloudstack.stop());

    const info: LabInfo = {
      cluster: { name: clusterName, id: clusterId },
      cloudstack: { url: cloudstack.url, apiKey, secretKey },
      xapi: { protocol: 'http', port: xapiPort, ...credentials },
      ssh: {
        port: sshPort,
        username: 'root',
        privateKeyFile: material.clientKeyFile,
        knownHostsFile: material.knownHostsFile,
      },
      hosts: model.hosts.map((h) => ({ name: h.name, address: h.address })),
      estimates: {
        migrationMegabytesPerSecond: Math.max(
          1,
          Math.round((spec.hosts[0]?.nicBytesPerSecond ?? 1.25e9) / timings.bandwidthScale / 1e6),
        ),
        hostRebootSeconds: Math.max(
          1,
          Math.round((timings.rebootDelayMs + timings.bootMs + timings.xapiStartMs) / 1000),
        ),
      },
    };
    const baseline = captureBaseline(model, cloudstack.managedState());

    return {
      info,
      model,
      xapi,
      cloudstack,
      ssh: sshServers,
      log,
      baseline,
      env: () => labEnvironment(info),
      checkInvariants: (check = {}) =>
        checkInvariants(log.entries(), model, baseline, {
          expectRestored: check.expectRestored ?? true,
          managedState: cloudstack.managedState(),
        }),
      faults: {
        failMigration: (vm, times) => model.failMigration(vm, times),
        hostNeverComesBack: (host) => model.hostNeverComesBack(host),
        xapiNeverComesBack: (host) => model.xapiNeverComesBack(host),
        slowReboot: (host, extraMs) => model.slowReboot(host, extraMs),
        changeHostKeyOnReboot: (host) => {
          model.hostByName(host);
          hostKeyChanges.add(host);
        },
        expireSessions: () => xapi.expireSessions(),
        startVm: (host, vm, memory) => {
          model.startVm(host, vm, memory);
        },
      },
      stop: async () => {
        for (const cleanup of cleanups.reverse()) await cleanup();
        if (ownDir) rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
    if (ownDir) rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

export function labEnvironment(info: LabInfo): Record<string, string> {
  return {
    CLOUDSTACK_URL: info.cloudstack.url,
    CLOUDSTACK_API_KEY: info.cloudstack.apiKey,
    CLOUDSTACK_SECRET_KEY: info.cloudstack.secretKey,
    XAPI_USERNAME: info.xapi.username,
    XAPI_PASSWORD: info.xapi.password,
    XAPI_PROTOCOL: info.xapi.protocol,
    XAPI_PORT: String(info.xapi.port),
    SSH_USERNAME: info.ssh.username,
    SSH_PORT: String(info.ssh.port),
    SSH_PRIVATE_KEY_FILE: info.ssh.privateKeyFile,
    SSH_KNOWN_HOSTS_FILE: info.ssh.knownHostsFile,
    ESTIMATE_MIGRATION_MBYTES_PER_SECOND: String(info.estimates.migrationMegabytesPerSecond),
    ESTIMATE_HOST_REBOOT_SECONDS: String(info.estimates.hostRebootSeconds),
  };
}

/** A port free on every one of `addresses` (each host listens on its own address, same port). */
async function freePortOn(addresses: string[]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await listenOnce(addresses[0] ?? '127.0.0.1', 0);
    const others = await Promise.all(
      addresses.slice(1).map((a) =>
        listenOnce(a, port).then(
          () => true,
          () => false,
        ),
      ),
    );
    if (others.every(Boolean)) return port;
  }
  throw new Error(`no port free on all of ${addresses.join(', ')}`);
}

function listenOnce(address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, address, () => {
      const bound = server.address();
      const chosen = typeof bound === 'object' && bound ? bound.port : port;
      server.close(() => resolve(chosen));
    });
  });
}
