import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type LabCloudStack,
  type LabCloudStackHostSource,
  startLabCloudStack,
} from '../../lab/cloudstack-server.js';
import { OperationLog } from '../../lab/operation-log.js';
import { CloudStackClient, type CloudStackClientOptions } from '../../src/cloudstack/client.js';
import { javaUrlEncode, signParams } from '../../src/cloudstack/sign.js';
import type { ManagedState } from '../../src/cloudstack/types.js';
import { CloudStackError, CloudStackProtocolError, CloudStackTransportError } from '../../src/errors.js';

const API_KEY = 'lab-api-key-8f3a';
const SECRET_KEY = 'lab-secret-key-Zq91+/xY';
const UNMANAGE_DELAY_MS = 150;
const RECONNECT_DELAY_MS = 250;

const cluster = {
  id: 'c0ffee00-0000-4000-8000-000000000001',
  name: 'CLUSTER-10',
  podId: 'pod-uuid-1',
  podName: 'POD-1',
  zoneId: 'zone-uuid-1',
  zoneName: 'ZONE-1',
};

function fixedSource(hostCount: number): LabCloudStackHostSource {
  const hosts = Array.from({ length: hostCount }, (_, i) => ({
    id: `host-uuid-${i + 1}`,
    name: `xen-${String(i + 1).padStart(4, '0')}`,
    ipAddress: `127.0.${Math.floor(i / 250)}.${(i % 250) + 2}`,
    live: true,
    liveChangedAt: 0,
  }));
  return { cluster, hosts: () => hosts };
}

let log: OperationLog;
let lab: LabCloudStack;

async function startLab(hostCount = 3): Promise<LabCloudStack> {
  return startLabCloudStack({
    address: '127.0.0.1',
    port: 0,
    apiKey: API_KEY,
    secretKey: SECRET_KEY,
    source: fixedSource(hostCount),
    log,
    timings: { unmanageDelayMs: UNMANAGE_DELAY_MS, reconnectDelayMs: RECONNECT_DELAY_MS },
  });
}

function clientFor(url: string, overrides: Partial<CloudStackClientOptions> = {}): CloudStackClient {
  return new CloudStackClient({ url, apiKey: API_KEY, secretKey: SECRET_KEY, timeoutMs: 2000, ...overrides });
}

/** A hand-signed request, to see exactly what the lab answers on the wire. */
async function rawCall(
  params: Record<string, string>,
  options: { secret?: string; method?: 'GET' | 'POST' } = {},
): Promise<{ status: number; json: Record<string, Record<string, unknown>> }> {
  const signature = signParams(params, options.secret ?? SECRET_KEY);
  const encoded = Object.entries({ ...params, signature })
    .map(([name, value]) => `${javaUrlEncode(name)}=${javaUrlEncode(value)}`)
    .join('&');
  const response =
    options.method === 'POST'
      ? await fetch(lab.url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: encoded,
        })
      : await fetch(`${lab.url}?${encoded}`);
  return {
    status: response.status,
    json: (await response.json()) as Record<string, Record<string, unknown>>,
  };
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

/** A plain node:http server answering every request with `handler`, for non-CloudStack answers. */
async function rawServer(
  handler: http.RequestListener,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/client/api`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

beforeEach(async () => {
  log = new OperationLog();
  lab = await startLab();
});

afterEach(async () => {
  await lab.stop();
});

describe('CloudStackClient against the lab', () => {
  it('finds a cluster by its exact name and maps its fields', async () => {
    const clusters = await clientFor(lab.url).listClusters({ name: 'CLUSTER-10' });

    expect(clusters).toEqual([
      {
        id: cluster.id,
        name: 'CLUSTER-10',
        hypervisorType: 'XenServer',
        managedState: 'Managed',
        allocationState: 'Enabled',
        clusterType: 'CloudManaged',
        podId: 'pod-uuid-1',
        podName: 'POD-1',
        zoneId: 'zone-uuid-1',
        zoneName: 'ZONE-1',
      },
    ]);
    const calls = log.ofKind('cloudstack.call');
    expect(calls.map((op) => op.detail)).toEqual([
      { command: 'listClusters', params: { command: 'listClusters', response: 'json', name: 'CLUSTER-10' } },
    ]);
  });

  it('answers [] for an unknown name, and does not take a substring match for the cluster', async () => {
    const client = clientFor(lab.url);
    expect(await client.listClusters({ name: 'NO-SUCH-CLUSTER' })).toEqual([]);

    // The lab, like older servers, matches name as LIKE '%name%': CLUSTER-1 finds CLUSTER-10 on the wire.
    const wire = await rawCall({
      command: 'listClusters',
      response: 'json',
      apiKey: API_KEY,
      name: 'CLUSTER-1',
    });
    expect(wire.json.listclustersresponse?.count).toBe(1);
    expect(await client.listClusters({ name: 'CLUSTER-1' })).toEqual([]);

    const empty = await rawCall({ command: 'listClusters', response: 'json', apiKey: API_KEY, name: 'NOPE' });
    expect(empty).toEqual({ status: 200, json: { listclustersresponse: {} } });
  });

  it('signs values with characters encodeURIComponent would leave alone', async () => {
    expect(await clientFor(lab.url).listClusters({ name: "it's (a) test~! é+&=" })).toEqual([]);
    expect(log.ofKind('cloudstack.call')[0]?.detail?.params).toMatchObject({ name: "it's (a) test~! é+&=" });
  });

  it('percent-encodes a signature containing + and / so the server reads it back', async () => {
    // Deterministic search for a name whose signature has both characters a raw query would mangle.
    let name = '';
    for (let i = 0; ; i++) {
      name = `CLUSTER-${i}`;
      const signature = signParams(
        { command: 'listClusters', response: 'json', apiKey: API_KEY, name },
        SECRET_KEY,
      );
      if (signature.includes('+') && signature.includes('/')) break;
    }
    expect(await clientFor(lab.url).listClusters({ name })).toEqual([]);
  });

  it('lists a cluster by id', async () => {
    const clusters = await clientFor(lab.url).listClusters({ id: cluster.id });
    expect(clusters.map((c) => c.name)).toEqual(['CLUSTER-10']);
  });

  it('lists the routing hosts of a cluster with their addresses and states', async () => {
    const hosts = await clientFor(lab.url).listHosts({ clusterId: cluster.id });

    expect(hosts).toEqual(
      [1, 2, 3].map((n) => ({
        id: `host-uuid-${n}`,
        name: `xen-000${n}`,
        ipAddress: `127.0.0.${n + 1}`,
        state: 'Up',
        resourceState: 'Enabled',
        type: 'Routing',
        clusterId: cluster.id,
        clusterName: 'CLUSTER-10',
        hypervisor: 'XenServer',
      })),
    );
    expect(log.ofKind('cloudstack.call')[0]?.detail?.params).toMatchObject({
      clusterid: cluster.id,
      type: 'Routing',
      page: '1',
      pagesize: '500',
    });
  });

  it('follows pages of 500 until every host is read', async () => {
    await lab.stop();
    lab = await startLab(1201);

    const hosts = await clientFor(lab.url).listHosts({ clusterId: cluster.id });

    expect(hosts).toHaveLength(1201);
    expect(new Set(hosts.map((h) => h.id)).size).toBe(1201);
    const pages = log
      .ofKind('cloudstack.call')
      .map((op) => (op.detail?.params as Record<string, string> | undefined)?.page);
    expect(pages).toEqual(['1', '2', '3']);
  });

  it('unmanages synchronously: PrepareUnmanaged while it runs, old state in the answer, hosts Disconnected', async () => {
    const client = clientFor(lab.url);
    const seenWhileRunning: string[] = [];
    const unsubscribe = log.subscribe((op) => {
      if (op.kind === 'cloudstack.managedstate') seenWhileRunning.push(lab.managedState());
    });
    const startedAt = Date.now();

    const answer = await client.updateCluster({ id: cluster.id, managedState: 'Unmanaged' });
    unsubscribe();

    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(UNMANAGE_DELAY_MS);
    expect(answer.managedState).toBe('Managed');
    expect(seenWhileRunning).toEqual(['PrepareUnmanaged', 'Unmanaged']);
    expect(log.ofKind('cloudstack.managedstate').map((op) => op.detail)).toEqual([
      { from: 'Managed', to: 'PrepareUnmanaged' },
      { from: 'PrepareUnmanaged', to: 'Unmanaged' },
    ]);
    expect((await client.listClusters({ name: 'CLUSTER-10' }))[0]?.managedState).toBe('Unmanaged');
    const hosts = await client.listHosts({ clusterId: cluster.id });
    expect(hosts.map((h) => h.state)).toEqual(['Disconnected', 'Disconnected', 'Disconnected']);
    expect(lab.hostState('host-uuid-1')).toBe('Disconnected');
  });

  it('manages again: hosts Connecting at once, Up only after the reconnect delay', async () => {
    const client = clientFor(lab.url);
    await client.updateCluster({ id: cluster.id, managedState: 'Unmanaged' });
    const managedFrom = Date.now();

    const answer = await client.updateCluster({ id: cluster.id, managedState: 'Managed' });

    expect(answer.managedState).toBe('Unmanaged');
    expect(lab.managedState()).toBe('Managed');
    expect((await client.listHosts({ clusterId: cluster.id })).map((h) => h.state)).toEqual([
      'Connecting',
      'Connecting',
      'Connecting',
    ]);
    let states: string[] = [];
    while (Date.now() - managedFrom < 5000) {
      states = (await client.listHosts({ clusterId: cluster.id })).map((h) => h.state);
      if (states.every((s) => s === 'Up')) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(states).toEqual(['Up', 'Up', 'Up']);
    expect(Date.now() - managedFrom).toBeGreaterThanOrEqual(RECONNECT_DELAY_MS);
  });

  it('follows host liveness while Managed: Up from the start, Alert when down, Connecting when back', async () => {
    await lab.stop();
    const host = { id: 'h1', name: 'xen-1', ipAddress: '127.0.0.2', live: true, liveChangedAt: Date.now() };
    lab = await startLabCloudStack({
      address: '127.0.0.1',
      port: 0,
      apiKey: API_KEY,
      secretKey: SECRET_KEY,
      source: { cluster, hosts: () => [host] },
      log,
      timings: { unmanageDelayMs: UNMANAGE_DELAY_MS, reconnectDelayMs: 60_000 },
    });
    const state = async () => (await clientFor(lab.url).listHosts({ clusterId: cluster.id }))[0]?.state;

    expect(await state()).toBe('Up');
    Object.assign(host, { live: false, liveChangedAt: Date.now() });
    expect(await state()).toBe('Alert');
    Object.assign(host, { live: true, liveChangedAt: Date.now() });
    expect(await state()).toBe('Connecting');
  });

  it('keeps hosts Disconnected after re-managing while neverReconnect is on', async () => {
    const client = clientFor(lab.url, {});
    lab.faults.neverReconnect(true);
    await client.updateCluster({ id: cluster.id, managedState: 'Unmanaged' });
    await client.updateCluster({ id: cluster.id, managedState: 'Managed' });
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_DELAY_MS + 50));

    expect((await client.listHosts({ clusterId: cluster.id })).map((h) => h.state)).toEqual([
      'Disconnected',
      'Disconnected',
      'Disconnected',
    ]);
    lab.faults.neverReconnect(false);
    expect(lab.hostState('host-uuid-1')).toBe('Connecting');
  });

  it('reports a bad signature as CloudStackError 401, verbatim', async () => {
    const error = await caught(
      clientFor(lab.url, { secretKey: 'not-the-secret' }).listClusters({ name: 'CLUSTER-10' }),
    );

    expect(error).toBeInstanceOf(CloudStackError);
    expect(error).toMatchObject({
      command: 'listClusters',
      errorCode: 401,
      errorText: 'unable to verify user credentials and/or request signature',
    });
  });

  it('reports a bad managed state as 431/4350 verbatim and changes nothing', async () => {
    const error = await caught(
      clientFor(lab.url).updateCluster({ id: cluster.id, managedState: 'managed' as ManagedState }),
    );

    expect(error).toBeInstanceOf(CloudStackError);
    expect(error).toMatchObject({
      command: 'updateCluster',
      errorCode: 431,
      csErrorCode: 4350,
      errorText: "Unable to resolve Managed State 'managed' to a supported state",
    });
    expect(lab.managedState()).toBe('Managed');
    expect(log.ofKind('cloudstack.managedstate')).toEqual([]);
  });

  it('reports an unknown cluster id on updateCluster as 431', async () => {
    const error = await caught(
      clientFor(lab.url).updateCluster({ id: 'no-such-uuid', managedState: 'Unmanaged' }),
    );
    expect(error).toMatchObject({ errorCode: 431 });
    expect((error as CloudStackError).errorText).toContain('no-such-uuid');
  });

  it('passes injected failures through verbatim, then recovers', async () => {
    const client = clientFor(lab.url);
    lab.faults.failNext('listHosts', 1);
    lab.faults.failNext('listClusters', 1, 534, 'lab says: resource unavailable');

    const hostError = await caught(client.listHosts({ clusterId: cluster.id }));
    const clusterError = await caught(client.listClusters({ name: 'CLUSTER-10' }));

    expect(hostError).toMatchObject({
      command: 'listHosts',
      errorCode: 530,
      csErrorCode: 4250,
      errorText: 'Internal error executing command, please contact your system administrator',
    });
    expect(clusterError).toMatchObject({ errorCode: 534, errorText: 'lab says: resource unavailable' });
    expect(await client.listHosts({ clusterId: cluster.id })).toHaveLength(3);
    expect(log.ofKind('cloudstack.fault').map((op) => op.detail?.command)).toEqual([
      'listHosts',
      'listClusters',
    ]);
  });

  it('gives up on a hung request with CloudStackTransportError within the timeout', async () => {
    const client = clientFor(lab.url, { timeoutMs: 300 });
    lab.faults.hangNext('listClusters', 1);
    const startedAt = Date.now();

    const error = await caught(client.listClusters({ name: 'CLUSTER-10' }));

    const elapsed = Date.now() - startedAt;
    expect(error).toBeInstanceOf(CloudStackTransportError);
    expect(elapsed).toBeGreaterThanOrEqual(300);
    expect(elapsed).toBeLessThan(2000);
    const { host } = new URL(lab.url);
    expect((error as Error).message).toBe(`CloudStack listClusters to ${host} did not answer within 300 ms`);
    expect(await client.listClusters({ name: 'CLUSTER-10' })).toHaveLength(1);
  });

  it('times updateCluster with its own longer timeout', async () => {
    const client = clientFor(lab.url, { timeoutMs: 50, updateTimeoutMs: 2000 });
    const answer = await client.updateCluster({ id: cluster.id, managedState: 'Unmanaged' });
    expect(answer.id).toBe(cluster.id);

    lab.faults.hangNext('updateCluster', 1);
    const error = await caught(
      clientFor(lab.url, { timeoutMs: 2000, updateTimeoutMs: 100 }).updateCluster({
        id: cluster.id,
        managedState: 'Managed',
      }),
    );
    expect((error as Error).message).toMatch(/did not answer within 100 ms$/);
  });

  it('ends hung requests when the lab stops', async () => {
    lab.faults.hangNext('listHosts', 1);
    const pending = caught(clientFor(lab.url, { timeoutMs: 10_000 }).listHosts({ clusterId: cluster.id }));
    await new Promise<void>((resolve) => {
      const unsubscribe = log.subscribe((op) => {
        if (op.kind === 'cloudstack.fault') {
          unsubscribe();
          resolve();
        }
      });
    });
    const startedAt = Date.now();
    await lab.stop();

    expect(await pending).toBeInstanceOf(CloudStackTransportError);
    expect(Date.now() - startedAt).toBeLessThan(2000);
  });

  it('reports a refused connection as CloudStackTransportError naming host:port only', async () => {
    const { host } = new URL(lab.url);
    await lab.stop();

    const error = await caught(clientFor(lab.url).listClusters({ name: 'CLUSTER-10' }));

    expect(error).toBeInstanceOf(CloudStackTransportError);
    expect((error as Error).message).toBe(`CloudStack listClusters to ${host} failed: ECONNREFUSED`);
  });
});

describe('CloudStackClient against non-CloudStack answers', () => {
  it('reports an HTML 502 page as CloudStackProtocolError with the status and a short excerpt', async () => {
    const page = `<html><head><title>502 Bad Gateway</title></head><body>${'x'.repeat(500)}</body></html>`;
    const server = await rawServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end(page);
    });
    try {
      const error = await caught(clientFor(server.url).listClusters({ name: 'CLUSTER-10' }));

      expect(error).toBeInstanceOf(CloudStackProtocolError);
      const message = (error as Error).message;
      expect(message).toContain('HTTP 502');
      expect(message).toContain('<title>502 Bad Gateway</title>');
      expect(message).not.toContain('x'.repeat(200));
    } finally {
      await server.close();
    }
  });

  it('reports truncated JSON and an unexpected shape as CloudStackProtocolError', async () => {
    const bodies = [
      '{"listclustersresponse":{"count":1,"clus',
      '{"listclustersresponse":{"count":1,"cluster":[{"id":7}]}}',
    ];
    const server = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(bodies.shift());
    });
    try {
      const client = clientFor(server.url);
      const truncated = await caught(client.listClusters({}));
      const misshapen = await caught(client.listClusters({}));

      expect(truncated).toBeInstanceOf(CloudStackProtocolError);
      expect((truncated as Error).message).toContain('not JSON');
      expect(misshapen).toBeInstanceOf(CloudStackProtocolError);
      expect((misshapen as Error).message).toContain('cluster.0.id');
    } finally {
      await server.close();
    }
  });

  it('aborts a body over 10 MB', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    const server = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      let sent = 0;
      const pump = () => {
        while (sent < 11 && res.write(chunk)) sent++;
        if (sent < 11) res.once('drain', pump);
        else res.end();
      };
      res.on('error', () => {});
      pump();
    });
    try {
      const error = await caught(clientFor(server.url).listClusters({}));
      expect(error).toBeInstanceOf(CloudStackProtocolError);
      expect((error as Error).message).toContain('larger than 10485760 bytes');
    } finally {
      await server.close();
    }
  });
});

describe('secrets in errors', () => {
  it('never shows the secret key, the api key or the signature in any error', async () => {
    const errors: unknown[] = [];
    const signatures: string[] = [];
    const track = (params: Record<string, string>, secret = SECRET_KEY) => {
      const signature = signParams({ response: 'json', apiKey: API_KEY, ...params }, secret);
      signatures.push(signature, javaUrlEncode(signature));
    };

    // A proxy page that echoes the request line back, query string and all.
    const echo = await rawServer((req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end(`<p>bad gateway for ${req.url}</p>`);
    });
    try {
      errors.push(await caught(clientFor(echo.url).listClusters({ name: 'C' })));
      track({ command: 'listClusters', name: 'C' });
    } finally {
      await echo.close();
    }

    errors.push(await caught(clientFor(lab.url, { secretKey: 'wrong-secret' }).listClusters({ name: 'C' })));
    track({ command: 'listClusters', name: 'C' }, 'wrong-secret');

    errors.push(
      await caught(clientFor(lab.url).updateCluster({ id: cluster.id, managedState: 'x' as ManagedState })),
    );
    track({ command: 'updateCluster', id: cluster.id, managedstate: 'x' });

    lab.faults.hangNext('listClusters', 1);
    errors.push(await caught(clientFor(lab.url, { timeoutMs: 100 }).listClusters({ name: 'C' })));

    await lab.stop();
    errors.push(await caught(clientFor(lab.url).listClusters({ name: 'C' })));

    expect(errors.map((e) => (e as Error).constructor.name)).toEqual([
      'CloudStackProtocolError',
      'CloudStackError',
      'CloudStackError',
      'CloudStackTransportError',
      'CloudStackTransportError',
    ]);
    // The echoed page really carried the credentials; the error must have dropped them.
    expect((errors[0] as Error).message).toContain('[redacted]');
    for (const error of errors) {
      const shown = `${inspect(error, { depth: 5 })}\n${(error as Error).stack}`;
      for (const secret of [SECRET_KEY, 'wrong-secret', API_KEY, ...signatures]) {
        expect(shown).not.toContain(secret);
      }
    }
  });
});

describe('the lab server on the wire', () => {
  it('accepts a signed POST form', async () => {
    const answer = await rawCall(
      { command: 'listHosts', response: 'json', apiKey: API_KEY },
      { method: 'POST' },
    );
    expect(answer.status).toBe(200);
    expect(answer.json.listhostsresponse?.count).toBe(3);
  });

  it('answers CloudStack error shapes: no command, unknown command, unknown api key', async () => {
    const noCommand = await rawCall({ response: 'json', apiKey: API_KEY });
    expect(noCommand).toMatchObject({
      status: 400,
      json: { errorresponse: { errorcode: 400, errortext: 'no command specified' } },
    });

    const unknown = await rawCall({ command: 'listVirtualMachines', response: 'json', apiKey: API_KEY });
    expect(unknown.status).toBe(432);
    expect(unknown.json.errorresponse?.errorcode).toBe(432);

    const badKey = await rawCall({ command: 'listHosts', response: 'json', apiKey: 'someone-else' });
    expect(badKey).toMatchObject({
      status: 401,
      json: {
        listhostsresponse: {
          errorcode: 401,
          errortext: 'unable to verify user credentials and/or request signature',
        },
      },
    });
  });

  it('enforces expires for signatureVersion 3', async () => {
    const base = { command: 'listClusters', response: 'json', apiKey: API_KEY, signatureVersion: '3' };
    const future = await rawCall({ ...base, expires: '2999-01-01T00:00:00+0000' });
    const past = await rawCall({ ...base, expires: '2001-01-01T00:00:00+0000' });
    const missing = await rawCall(base);

    expect([future.status, past.status, missing.status]).toEqual([200, 401, 401]);
  });

  it('answers a page past the end with the count and no array, and refuses pages over 500', async () => {
    const base = { command: 'listHosts', response: 'json', apiKey: API_KEY };
    const beyond = await rawCall({ ...base, page: '2', pagesize: '500' });
    expect(beyond.json).toEqual({ listhostsresponse: { count: 3 } });

    const tooBig = await rawCall({ ...base, pagesize: '501' });
    expect(tooBig.status).toBe(431);
  });

  it('formats host dates as yyyy-MM-ddTHH:mm:ss+0000 and logs calls without credentials', async () => {
    await clientFor(lab.url).updateCluster({ id: cluster.id, managedState: 'Unmanaged' });
    const answer = await rawCall({ command: 'listHosts', response: 'json', apiKey: API_KEY });
    const host = (answer.json.listhostsresponse?.host as Array<Record<string, string>> | undefined)?.[0];

    expect(host?.disconnected).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$/);
    expect(host?.lastpinged).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$/);
    for (const op of log.ofKind('cloudstack.call')) {
      const params = (op.detail?.params ?? {}) as Record<string, string>;
      expect(Object.keys(params).map((k) => k.toLowerCase())).not.toContain('apikey');
      expect(Object.keys(params).map((k) => k.toLowerCase())).not.toContain('signature');
    }
  });
});
