/**
 * The real CloudStackClient against a whole lab: CloudStack's view of the cluster agrees with the XAPI
 * pool it manages, forged requests are refused, and the managed state drives the hosts' connection state.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { CloudStackClient } from '../../src/cloudstack/client.js';
import { CloudStackError } from '../../src/errors.js';
import { XapiClient } from '../../src/xapi/client.js';
import { XapiPool } from '../../src/xapi/pool-api.js';
import { startTestLab } from '../support/lab-cli.js';
import { until } from '../support/lab-waits.js';

const RECONNECT_DELAY_MS = 800;

let lab: Lab | undefined;
let xapi: XapiClient | undefined;

afterEach(async () => {
  await xapi?.logout();
  xapi = undefined;
  await lab?.stop();
  lab = undefined;
});

async function start(): Promise<Lab> {
  lab = await startTestLab({
    hosts: 3,
    vms: 3,
    cloudstackTimings: { unmanageDelayMs: 100, reconnectDelayMs: RECONNECT_DELAY_MS },
  });
  return lab;
}

function cloudstack(at: Lab, secretKey = at.info.cloudstack.secretKey): CloudStackClient {
  return new CloudStackClient({ ...at.info.cloudstack, secretKey, timeoutMs: 3_000 });
}

describe('CloudStack of a lab', () => {
  it('lists the cluster and its hosts with the names and addresses the XAPI pool has', async () => {
    const at = await start();
    const client = cloudstack(at);

    const clusters = await client.listClusters({ name: 'CLUSTER-1' });
    expect(clusters).toEqual([
      expect.objectContaining({
        id: at.info.cluster.id,
        name: 'CLUSTER-1',
        hypervisorType: 'XenServer',
        managedState: 'Managed',
      }),
    ]);
    const hosts = await client.listHosts({ clusterId: at.info.cluster.id });

    xapi = await XapiClient.connect({
      hosts: [hosts[0]?.ipAddress ?? ''],
      port: at.info.xapi.port,
      protocol: 'http',
      username: at.info.xapi.username,
      password: at.info.xapi.password,
      callTimeoutMs: 3_000,
      loginTimeoutMs: 5_000,
      taskPollIntervalMs: 20,
    });
    const pool = await new XapiPool(xapi).getHosts();

    const seenByCloudStack = hosts.map((h) => ({ name: h.name, address: h.ipAddress })).sort(byName);
    const seenByXapi = pool.map((h) => ({ name: h.nameLabel, address: h.address })).sort(byName);
    expect(seenByCloudStack).toEqual(seenByXapi);
    expect(seenByCloudStack).toEqual([...at.info.hosts].sort(byName));
    expect(hosts.map((h) => h.id).sort()).toEqual(pool.map((h) => h.uuid).sort());
    for (const host of hosts) {
      expect(host).toMatchObject({
        state: 'Up',
        resourceState: 'Enabled',
        type: 'Routing',
        clusterId: at.info.cluster.id,
        clusterName: 'CLUSTER-1',
        hypervisor: 'XenServer',
      });
    }
  });

  it('refuses a request signed with the wrong secret with 401 and changes nothing', async () => {
    const at = await start();
    const forged = cloudstack(at, `${at.info.cloudstack.secretKey}x`);

    const error = await forged.updateCluster({ id: at.info.cluster.id, managedState: 'Unmanaged' }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(CloudStackError);
    expect(error).toMatchObject({
      command: 'updateCluster',
      errorCode: 401,
      errorText: 'unable to verify user credentials and/or request signature',
    });
    expect(at.cloudstack.managedState()).toBe('Managed');
    expect(at.log.ofKind('cloudstack.managedstate')).toEqual([]);
    expect(at.log.ofKind('cloudstack.call')).toEqual([
      expect.objectContaining({ detail: expect.objectContaining({ command: 'updateCluster' }) }),
    ]);
  });

  it('Unmanaged disconnects every host; Managed brings them back Up only after the reconnect delay', async () => {
    const at = await start();
    const client = cloudstack(at);
    const id = at.info.cluster.id;
    const states = async () => (await client.listHosts({ clusterId: id })).map((h) => h.state);

    await client.updateCluster({ id, managedState: 'Unmanaged' });
    expect((await client.listClusters({ id }))[0]?.managedState).toBe('Unmanaged');
    expect(await states()).toEqual(['Disconnected', 'Disconnected', 'Disconnected']);

    await client.updateCluster({ id, managedState: 'Managed' });
    const managedAt = Date.now();
    expect((await client.listClusters({ id }))[0]?.managedState).toBe('Managed');
    expect(await states()).toEqual(['Connecting', 'Connecting', 'Connecting']);
    await until(
      async () => (await states()).every((state) => state === 'Up'),
      'every host is Up again',
      RECONNECT_DELAY_MS + 3_000,
    );
    expect(Date.now() - managedAt).toBeGreaterThanOrEqual(RECONNECT_DELAY_MS - 50);
    expect(at.log.ofKind('cloudstack.managedstate').map((op) => op.detail?.to)).toEqual([
      'PrepareUnmanaged',
      'Unmanaged',
      'Managed',
    ]);
  });
});

function byName(a: { name: string }, b: { name: string }): number {
  return a.name.localeCompare(b.name);
}
