/**
 * Hostile or broken peers on the wire: XAPI and CloudStack "servers" over real sockets that answer
 * truncated XML or JSON, wrong types, HTML error pages, huge bodies, XML-RPC faults, entity bombs,
 * non-HTTP bytes, or dribble bytes forever. Every case must end as a typed error
 * (`XapiProtocolError`, `CloudStackProtocolError` or a transport error) within its timeout: never a
 * crash, a hang, or a body read without limit.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createLabXmlRpcServer, type LabXmlRpcServer } from '../../lab/xmlrpc-server.js';
import { CloudStackClient } from '../../src/cloudstack/client.js';
import {
  CloudStackProtocolError,
  CloudStackTransportError,
  XapiProtocolError,
  XapiTransportError,
} from '../../src/errors.js';
import { XapiClient } from '../../src/xapi/client.js';
import { XapiPool } from '../../src/xapi/pool-api.js';
import { MAX_RESPONSE_BYTES, xapiCall } from '../../src/xapi/transport.js';

const HOST = '127.0.0.1';
const CALL_TIMEOUT_MS = 1_500;
/** What the server "echoes" in the answers that quote a value: it must never reach an error message. */
const ECHOED = 'ECHOED-REQUEST-TEXT-4f1c';

interface Peer {
  port: number;
  /** Resolves when every connection the peer saw has been closed (by the client, at the latest). */
  allClosed(): Promise<void>;
  close(): Promise<void>;
}

const peers: Peer[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((peer) => peer.close()));
});

/** A raw TCP or HTTP peer on a free port, tracking its connections. */
async function startPeer(server: net.Server): Promise<Peer> {
  const sockets = new Set<net.Socket>();
  const closings: Array<Promise<void>> = [];
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    closings.push(new Promise((resolve) => socket.once('close', () => resolve())));
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const peer: Peer = {
    port: (server.address() as net.AddressInfo).port,
    allClosed: async () => {
      await Promise.all(closings);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  peers.push(peer);
  return peer;
}

function httpPeer(answer: (res: http.ServerResponse) => void): Promise<Peer> {
  return startPeer(
    http.createServer((req, res) => {
      res.on('error', () => undefined);
      req.resume();
      req.on('end', () => answer(res));
    }),
  );
}

function send(status: number, contentType: string, body: string) {
  return (res: http.ServerResponse) => {
    res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}

/** Writes `head`, then `chunk` as fast as the client reads, until the client hangs up or `limit`. */
function flood(head: string, chunk: Buffer, limit: number, sent: { bytes: number; finished: boolean }) {
  return (res: http.ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.write(head);
    const pump = () => {
      while (sent.bytes < limit && !res.destroyed) {
        sent.bytes += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (!res.destroyed) {
        sent.finished = true;
        res.end();
      }
    };
    pump();
  };
}

/** Sends headers and then one byte every 20 ms, forever. */
function dribble(contentType: string, first: string) {
  return (res: http.ServerResponse) => {
    res.writeHead(200, { 'content-type': contentType, 'content-length': '1000000' });
    res.write(first);
    const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write(' ')), 20);
    res.on('close', () => clearInterval(timer));
  };
}

async function rejection(promise: Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const started = performance.now();
  const error = await promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)?.slice(0, 200)}`);
    },
    (e: unknown) => e as Error,
  );
  return { error, ms: performance.now() - started };
}

// ---------------------------------------------------------------------------------------------
// XAPI on the wire

const XML_HEAD = '<?xml version="1.0"?><methodResponse><params><param><value>';
const XML_TAIL = '</value></param></params></methodResponse>';
const envelope = (inner: string) => `${XML_HEAD}<struct>${inner}</struct>${XML_TAIL}`;
const member = (name: string, value: string) =>
  `<member><name>${name}</name><value>${value}</value></member>`;

function callXapi(port: number, timeoutMs = CALL_TIMEOUT_MS) {
  return xapiCall({ address: HOST, port, protocol: 'http' }, 'host.get_all_records', ['OpaqueRef:s'], {
    timeoutMs,
  });
}

describe('a hostile XAPI answer becomes a typed error', () => {
  const protocolCases: Array<[string, (res: http.ServerResponse) => void]> = [
    ['truncated XML', send(200, 'text/xml', `${XML_HEAD}<struct><member><name>Status</name><value>Succ`)],
    ['an HTML page with 200', send(200, 'text/html', '<html><body><h1>Welcome to nginx!</h1></body></html>')],
    [
      'an HTML error page with 500',
      send(500, 'text/html', '<html><body><h1>HTTP 500 internal server error</h1></body></html>'),
    ],
    [
      'a proxy error page with 502',
      send(502, 'text/html', '<html><head><title>502 Bad Gateway</title></head></html>'),
    ],
    ['a 404', send(404, 'text/plain', 'Not Found')],
    ['JSON', send(200, 'application/json', '{"Status":"Success","Value":[]}')],
    ['an empty body', send(200, 'text/xml', '')],
    [
      'an XML-RPC fault',
      send(
        200,
        'text/xml',
        `<?xml version="1.0"?><methodResponse><fault><value><struct>${member('faultCode', '<int>4</int>')}${member('faultString', 'Too many parameters')}</struct></value></fault></methodResponse>`,
      ),
    ],
    [
      'a fault whose code looks like a network error',
      send(
        200,
        'text/xml',
        `<methodResponse><fault><value><struct>${member('faultCode', '<string>ECONNREFUSED</string>')}</struct></value></fault></methodResponse>`,
      ),
    ],
    [
      'an empty fault',
      send(200, 'text/xml', '<?xml version="1.0"?><methodResponse><fault></fault></methodResponse>'),
    ],
    ['no Status', send(200, 'text/xml', envelope(member('Value', 'x')))],
    ['Success without Value', send(200, 'text/xml', envelope(member('Status', 'Success')))],
    [
      'a Failure with a non-string description',
      send(
        200,
        'text/xml',
        envelope(
          member('Status', 'Failure') +
            member('ErrorDescription', '<array><data><value><int>1</int></value></data></array>'),
        ),
      ),
    ],
    [
      'a Failure with an empty description',
      send(
        200,
        'text/xml',
        envelope(member('Status', 'Failure') + member('ErrorDescription', '<array><data></data></array>')),
      ),
    ],
    [
      'an array instead of the envelope',
      send(200, 'text/xml', `${XML_HEAD}<array><data><value>Success</value></data></array>${XML_TAIL}`),
    ],
    [
      'two params',
      send(
        200,
        'text/xml',
        '<methodResponse><params><param><value>a</value></param><param><value>b</value></param></params></methodResponse>',
      ),
    ],
    [
      'an integer that is not one (echoing the request)',
      send(200, 'text/xml', envelope(member('Status', 'Success') + member('Value', `<int>${ECHOED}</int>`))),
    ],
    [
      'a boolean that is not one',
      send(
        200,
        'text/xml',
        envelope(member('Status', 'Success') + member('Value', `<boolean>${ECHOED}</boolean>`)),
      ),
    ],
    [
      'a datetime that is not one',
      send(
        200,
        'text/xml',
        envelope(
          member('Status', 'Success') + member('Value', `<dateTime.iso8601>${ECHOED}</dateTime.iso8601>`),
        ),
      ),
    ],
    [
      'an unknown tag',
      send(
        200,
        'text/xml',
        envelope(member('Status', 'Success') + member('Value', '<script>alert(1)</script>')),
      ),
    ],
  ];

  it.each(protocolCases)('%s: XapiProtocolError', async (_name, answer) => {
    const peer = await httpPeer(answer);
    const { error, ms } = await rejection(callXapi(peer.port));
    expect(error).toBeInstanceOf(XapiProtocolError);
    expect(error.message).toMatch(/^XAPI host\.get_all_records/);
    expect(error.message.length).toBeLessThan(400);
    expect(error.message).not.toContain(ECHOED);
    expect(ms).toBeLessThan(CALL_TIMEOUT_MS);
    await peer.allClosed();
  });

  it('an entity bomb is not expanded: the answer is its literal text, read at once', async () => {
    const peer = await httpPeer(
      send(
        200,
        'text/xml',
        `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>${envelope(member('Status', 'Success') + member('Value', '&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;'))}`,
      ),
    );
    await expect(callXapi(peer.port)).resolves.toBe('&lol4;'.repeat(10));
  });

  it('a body that ends before its Content-Length: a transport error', async () => {
    const peer = await startPeer(
      net.createServer((socket) => {
        socket.once('data', () => {
          socket.end(
            `HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: 5000\r\n\r\n${XML_HEAD}<struct>`,
          );
        });
      }),
    );
    const { error, ms } = await rejection(callXapi(peer.port));
    expect(error).toBeInstanceOf(XapiTransportError);
    expect(ms).toBeLessThan(CALL_TIMEOUT_MS);
  });

  it('bytes that are not HTTP (an SSH banner): a transport error', async () => {
    const peer = await startPeer(
      net.createServer((socket) => {
        socket.write('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n');
        socket.on('data', () => socket.end('Invalid SSH identification string.\r\n'));
      }),
    );
    const { error, ms } = await rejection(callXapi(peer.port));
    expect(error).toBeInstanceOf(XapiTransportError);
    expect(ms).toBeLessThan(CALL_TIMEOUT_MS);
  });

  it('a server that dribbles bytes forever: a timeout, and the connection is closed', async () => {
    const peer = await httpPeer(dribble('text/xml', XML_HEAD));
    const { error, ms } = await rejection(callXapi(peer.port, 400));
    expect(error).toBeInstanceOf(XapiTransportError);
    expect(error).toMatchObject({ causeCode: 'ETIMEDOUT', requestMayHaveArrived: true });
    expect(ms).toBeGreaterThanOrEqual(390);
    expect(ms).toBeLessThan(1_400);
    await peer.allClosed();
  });

  it(`a body over ${MAX_RESPONSE_BYTES / 2 ** 20} MiB: given up while the server is still sending`, async () => {
    const sent = { bytes: 0, finished: false };
    const limit = 2 * MAX_RESPONSE_BYTES;
    // Three UTF-8 bytes per character: the byte limit is reached with a third of the parsing.
    const chunk = Buffer.from('\u20ac'.repeat(2 ** 18));
    const peer = await httpPeer(flood(`${XML_HEAD}<string>`, chunk, limit, sent));
    // A deadline far away: only the size limit can end this call in time.
    const { error } = await rejection(callXapi(peer.port, 25_000));
    expect(error).toBeInstanceOf(XapiProtocolError);
    expect(error.message).toContain(`more than ${MAX_RESPONSE_BYTES} bytes`);
    await peer.allClosed();
    expect(sent.finished).toBe(false);
    expect(sent.bytes).toBeLessThan(limit);
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// XAPI records with the wrong types, through the pool API

describe('XAPI records of the wrong type become XapiProtocolError naming the field', () => {
  let server: LabXmlRpcServer | undefined;
  const answers = new Map<string, () => unknown>();

  afterAll(async () => {
    await server?.stop();
  });

  async function poolAnswering(method: string, value: () => unknown): Promise<XapiPool> {
    answers.clear();
    answers.set(method, value);
    if (!server) {
      server = createLabXmlRpcServer({
        address: HOST,
        port: 0,
        handler: (name) => {
          if (name === 'session.login_with_password') return 'OpaqueRef:session';
          if (name === 'host.get_all_records' && !answers.has(name)) return {};
          const answer = answers.get(name);
          if (!answer) throw new Error(`unexpected ${name}`);
          return answer();
        },
      });
      await server.start();
    }
    const client = await XapiClient.connect({
      hosts: [HOST],
      port: server.port,
      protocol: 'http',
      username: 'root',
      password: 'pw',
      callTimeoutMs: CALL_TIMEOUT_MS,
      loginTimeoutMs: CALL_TIMEOUT_MS,
      taskPollIntervalMs: 10,
    });
    return new XapiPool(client);
  }

  const host = {
    uuid: 'u',
    name_label: 'xs-1',
    hostname: 'xs-1',
    address: '10.0.0.1',
    enabled: true,
    resident_VMs: [],
    metrics: 'OpaqueRef:m',
    control_domain: 'OpaqueRef:d',
    other_config: { agent_start_time: '1700000000.' },
  };
  const vm = {
    uuid: 'u',
    name_label: 'web-1',
    power_state: 'Running',
    resident_on: 'OpaqueRef:h',
    is_control_domain: false,
    is_a_template: false,
    is_a_snapshot: false,
    memory_static_max: '1024',
    memory_dynamic_max: '1024',
    memory_overhead: '0',
    VBDs: [],
    attached_PCIs: [],
    VGPUs: [],
    ha_restart_priority: '',
    other_config: {},
  };

  const cases: Array<[string, string, () => unknown, (pool: XapiPool) => Promise<unknown>, string]> = [
    [
      'a boolean as a string',
      'host.get_all_records',
      () => ({ 'OpaqueRef:h': { ...host, enabled: 'true' } }),
      (p) => p.getHosts(),
      '"enabled"',
    ],
    [
      'a set as a string',
      'host.get_all_records',
      () => ({ 'OpaqueRef:h': { ...host, resident_VMs: 'OpaqueRef:v' } }),
      (p) => p.getHosts(),
      '"resident_VMs"',
    ],
    [
      'a map of non-strings',
      'host.get_all_records',
      () => ({ 'OpaqueRef:h': { ...host, other_config: { a: ['b'] } } }),
      (p) => p.getHosts(),
      '"other_config"',
    ],
    [
      'a float that is not one',
      'host.get_all_records',
      () => ({ 'OpaqueRef:h': { ...host, other_config: { agent_start_time: 'soon' } } }),
      (p) => p.getHosts(),
      'agent_start_time',
    ],
    [
      'a record that is a string',
      'host.get_all_records',
      () => ({ 'OpaqueRef:h': 'xs-1' }),
      (p) => p.getHosts(),
      'expected a record',
    ],
    ['records as an array', 'VM.get_all_records', () => [vm], (p) => p.getVms(), 'expected a map of records'],
    [
      'an int64 that is not one',
      'VM.get_all_records',
      () => ({ 'OpaqueRef:v': { ...vm, memory_static_max: '1 GiB' } }),
      (p) => p.getVms(),
      '"memory_static_max"',
    ],
    [
      'an unknown power state',
      'VM.get_all_records',
      () => ({ 'OpaqueRef:v': { ...vm, power_state: 'Exploded' } }),
      (p) => p.getVms(),
      '"power_state"',
    ],
    [
      'a missing field',
      'host_metrics.get_all_records',
      () => ({ 'OpaqueRef:m': { live: true, memory_total: '1' } }),
      (p) => p.getHostMetrics(),
      '"memory_free"',
    ],
    [
      'two pools',
      'pool.get_all_records',
      () => ({ 'OpaqueRef:p1': {}, 'OpaqueRef:p2': {} }),
      (p) => p.getPool(),
      'pool',
    ],
    [
      'a server time that is a string',
      'host.get_servertime',
      () => '20240101T00:00:00Z',
      (p) => p.getServertime('OpaqueRef:h'),
      'expected a datetime',
    ],
    [
      'free memory as a word',
      'host.compute_free_memory',
      () => 'plenty',
      (p) => p.computeFreeMemory('OpaqueRef:h'),
      'int64',
    ],
    [
      'blockers as a string',
      'host.get_vms_which_prevent_evacuation',
      () => 'none',
      (p) => p.getVmsWhichPreventEvacuation('OpaqueRef:h'),
      'map of VM refs',
    ],
    [
      'a task reference that is a struct',
      'Async.host.enable',
      () => ({ task: 'x' }),
      (p) => p.client.callAsync('host.enable', ['OpaqueRef:h']),
      'task reference',
    ],
  ];

  it.each(cases)('%s (%s)', async (_name, method, value, read, mentions) => {
    const pool = await poolAnswering(method, value);
    try {
      const { error, ms } = await rejection(read(pool));
      expect(error).toBeInstanceOf(XapiProtocolError);
      expect(error.message).toContain(mentions);
      expect(ms).toBeLessThan(CALL_TIMEOUT_MS);
    } finally {
      await pool.client.logout();
    }
  });

  it('a task record of the wrong shape', async () => {
    const pool = await poolAnswering('Async.host.enable', () => 'OpaqueRef:task');
    answers.set('task.get_record', () => ({
      uuid: 't',
      name_label: 'x',
      status: 'exploded',
      progress: 1,
      result: '',
      error_info: [],
    }));
    answers.set('task.destroy', () => '');
    try {
      const { error } = await rejection(pool.client.callAsync('host.enable', ['OpaqueRef:h']));
      expect(error).toBeInstanceOf(XapiProtocolError);
      expect(error.message).toContain('"status"');
    } finally {
      await pool.client.logout();
    }
  });

  it('a login answered with a struct instead of a session', async () => {
    const odd = createLabXmlRpcServer({ address: HOST, port: 0, handler: () => ({ session: 'x' }) });
    await odd.start();
    try {
      const { error, ms } = await rejection(
        XapiClient.connect({
          hosts: [HOST],
          port: odd.port,
          protocol: 'http',
          username: 'root',
          password: 'pw',
          callTimeoutMs: CALL_TIMEOUT_MS,
          loginTimeoutMs: CALL_TIMEOUT_MS,
          taskPollIntervalMs: 10,
        }),
      );
      expect(error).toBeInstanceOf(XapiProtocolError);
      expect(error.message).toContain('expected a session reference');
      expect(ms).toBeLessThan(CALL_TIMEOUT_MS);
    } finally {
      await odd.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// CloudStack on the wire

function cloudstackAt(port: number, timeoutMs = CALL_TIMEOUT_MS): CloudStackClient {
  return new CloudStackClient({
    url: `http://${HOST}:${port}/client/api`,
    apiKey: 'api-key',
    secretKey: 'secret-key',
    timeoutMs,
  });
}

const clusterJson = {
  id: 'c1',
  name: 'CLUSTER-1',
  hypervisortype: 'XenServer',
  managedstate: 'Managed',
  allocationstate: 'Enabled',
  clustertype: 'CloudManaged',
  podid: 'p',
  podname: 'POD',
  zoneid: 'z',
  zonename: 'ZONE',
};

describe('a hostile CloudStack answer becomes a typed error', () => {
  const json = (value: unknown) => send(200, 'application/json', JSON.stringify(value));
  const cases: Array<[string, (res: http.ServerResponse) => void, string]> = [
    [
      'truncated JSON',
      send(200, 'application/json', '{"listclustersresponse":{"count":1,"cluster":[{"id":"c1","na'),
      'not JSON',
    ],
    ['an HTML page with 200', send(200, 'text/html', '<html><body>Apache Tomcat</body></html>'), 'not JSON'],
    [
      'an HTML error page with 503',
      send(503, 'text/html', '<html><body><h1>503 Service Unavailable</h1></body></html>'),
      'HTTP 503',
    ],
    ['an empty body', send(200, 'application/json', ''), 'not JSON'],
    ['JSON that is a string', json('listclustersresponse'), 'no "listclustersresponse" object'],
    ['the wrong response key', json({ listhostsresponse: { count: 0 } }), 'no "listclustersresponse" object'],
    [
      'a count that is a string',
      json({ listclustersresponse: { count: '1', cluster: [clusterJson] } }),
      'count',
    ],
    [
      'a cluster list that is an object',
      json({ listclustersresponse: { count: 1, cluster: clusterJson } }),
      'cluster',
    ],
    [
      'an id that is a number',
      json({ listclustersresponse: { count: 1, cluster: [{ ...clusterJson, id: 7 }] } }),
      'cluster.0.id',
    ],
    [
      'a managed state that is null',
      json({ listclustersresponse: { count: 1, cluster: [{ ...clusterJson, managedstate: null }] } }),
      'managedstate',
    ],
    [
      'an error without errortext',
      json({ listclustersresponse: { errorcode: 431 } }),
      'without errorcode/errortext',
    ],
    [
      'an error code that is an object',
      json({ errorresponse: { errorcode: { x: 1 }, errortext: 'no' } }),
      'without errorcode/errortext',
    ],
    ['deeply nested JSON', send(200, 'application/json', '['.repeat(500_000)), 'not JSON'],
  ];

  it.each(cases)('%s: CloudStackProtocolError', async (_name, answer, mentions) => {
    const peer = await httpPeer(answer);
    const { error, ms } = await rejection(cloudstackAt(peer.port).listClusters({ name: 'CLUSTER-1' }));
    expect(error).toBeInstanceOf(CloudStackProtocolError);
    expect(error.message).toContain(mentions);
    expect(error.message.length).toBeLessThan(600);
    expect(ms).toBeLessThan(CALL_TIMEOUT_MS);
  });

  it('a __proto__ key changes no prototype', async () => {
    const body = `{"listclustersresponse":{"count":1,"cluster":[{"__proto__":{"polluted":"yes"},${JSON.stringify(clusterJson).slice(1)}]}}`;
    const peer = await httpPeer(send(200, 'application/json', body));
    const clusters = await cloudstackAt(peer.port).listClusters({ name: 'CLUSTER-1' });
    expect(clusters.map((c) => c.name)).toEqual(['CLUSTER-1']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((clusters[0] as unknown as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('bytes that are not HTTP: a transport error', async () => {
    const peer = await startPeer(
      net.createServer((socket) => socket.on('data', () => socket.end('220 smtp.example ESMTP\r\n'))),
    );
    const { error, ms } = await rejection(cloudstackAt(peer.port).listClusters({}));
    expect(error).toBeInstanceOf(CloudStackTransportError);
    expect(ms).toBeLessThan(CALL_TIMEOUT_MS);
  });

  it('a server that dribbles bytes forever: a timeout, and the connection is closed', async () => {
    const peer = await httpPeer(dribble('application/json', '{"listclustersresponse":'));
    const { error, ms } = await rejection(cloudstackAt(peer.port, 400).listClusters({}));
    expect(error).toBeInstanceOf(CloudStackTransportError);
    expect(error.message).toContain('did not answer within 400 ms');
    expect(ms).toBeLessThan(1_400);
    await peer.allClosed();
  });

  it('a huge body without a Content-Length: given up while the server is still sending', async () => {
    const sent = { bytes: 0, finished: false };
    const limit = 200 * 2 ** 20;
    const peer = await httpPeer(
      flood('{"listclustersresponse":{"x":"', Buffer.alloc(2 ** 20, 'A'), limit, sent),
    );
    const { error } = await rejection(cloudstackAt(peer.port, 25_000).listClusters({}));
    expect(error).toBeInstanceOf(CloudStackProtocolError);
    expect(error.message).toContain('larger than');
    await peer.allClosed();
    expect(sent.finished).toBe(false);
    expect(sent.bytes).toBeLessThan(limit);
  });

  it('a huge declared Content-Length: refused before reading the body', async () => {
    const peer = await httpPeer((res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(2 ** 40) });
      res.write('{');
    });
    const { error, ms } = await rejection(cloudstackAt(peer.port).listClusters({}));
    expect(error).toBeInstanceOf(CloudStackProtocolError);
    expect(ms).toBeLessThan(CALL_TIMEOUT_MS);
    await peer.allClosed();
  });
});
