import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createLabXmlRpcServer,
  type LabXmlRpcServer,
  XapiFault,
  type XmlRpcHandler,
  xmlRpcValueFragment,
} from '../../lab/xmlrpc-server.js';
import { TimeoutError, XapiError, XapiProtocolError, XapiTransportError } from '../../src/errors.js';
import { XapiClient, type XapiClientOptions } from '../../src/xapi/client.js';
import { XapiPool } from '../../src/xapi/pool-api.js';
import { int64, XapiCallTransportError, xapiCall, xapiDouble } from '../../src/xapi/transport.js';

const USER = 'root';
const PASSWORD = 'Pa55-w0rd-never-shown';
const SLAVE_A = '127.0.0.41';
const MASTER = '127.0.0.42';
const SLAVE_B = '127.0.0.43';
const HTML_HOST = '127.0.0.44';
const SILENT_HOST = '127.0.0.45';
const TLS_HOST = '127.0.0.46';
const WIRE_HOST = '127.0.0.47';

type MethodImpl = (args: unknown[], host: string) => unknown;
interface RecordedCall {
  host: string;
  method: string;
  params: unknown[];
}

/**
 * A few hosts that behave like a pool at the session level: only the master accepts logins and
 * calls, members answer HOST_IS_SLAVE, sessions are checked first. Tests add methods as needed.
 */
class FakePool {
  readonly servers = new Map<string, LabXmlRpcServer>();
  readonly sessions = new Set<string>();
  readonly calls: RecordedCall[] = [];
  readonly methods = new Map<string, MethodImpl>();
  master: string;
  #nextSession = 1;
  readonly #events = new EventEmitter();

  private constructor(
    readonly addresses: string[],
    readonly defaultMaster: string,
  ) {
    this.master = defaultMaster;
  }

  static async start(
    addresses: string[],
    master: string,
    tls?: { key: string; cert: string },
  ): Promise<FakePool> {
    const pool = new FakePool(addresses, master);
    let port = 0;
    for (const address of addresses) {
      const server = createLabXmlRpcServer({
        address,
        port,
        handler: pool.#handler(address),
        ...(tls ? { tls } : {}),
      });
      await server.start();
      port = server.port;
      pool.servers.set(address, server);
    }
    return pool;
  }

  get port(): number {
    return this.server(this.defaultMaster).port;
  }

  server(address: string): LabXmlRpcServer {
    const server = this.servers.get(address);
    if (!server) throw new Error(`no server ${address}`);
    return server;
  }

  callsOf(method: string, host?: string): RecordedCall[] {
    return this.calls.filter((call) => call.method === method && (host === undefined || call.host === host));
  }

  /** Resolves once a call matching `predicate` has arrived (including ones already recorded). */
  waitForCall(predicate: (call: RecordedCall) => boolean): Promise<void> {
    if (this.calls.some(predicate)) return Promise.resolve();
    return new Promise((resolve) => {
      const listener = (call: RecordedCall) => {
        if (!predicate(call)) return;
        this.#events.off('call', listener);
        resolve();
      };
      this.#events.on('call', listener);
    });
  }

  async reset(): Promise<void> {
    this.calls.length = 0;
    this.methods.clear();
    this.sessions.clear();
    this.master = this.defaultMaster;
    this.#nextSession = 1;
    for (const server of this.servers.values()) await server.start();
  }

  async stopAll(): Promise<void> {
    for (const server of this.servers.values()) await server.stop();
  }

  #handler(address: string): XmlRpcHandler {
    return (method, params) => {
      const call = { host: address, method, params };
      this.calls.push(call);
      this.#events.emit('call', call);
      const custom = this.methods.get(method);
      if (method === 'session.login_with_password') {
        if (custom) return custom(params, address);
        if (address !== this.master) throw new XapiFault(['HOST_IS_SLAVE', this.master]);
        if (params[0] !== USER || params[1] !== PASSWORD) {
          throw new XapiFault(['SESSION_AUTHENTICATION_FAILED', String(params[0]), 'Authentication failure']);
        }
        const session = `OpaqueRef:session-${this.#nextSession++}`;
        this.sessions.add(session);
        return session;
      }
      if (address !== this.master) throw new XapiFault(['HOST_IS_SLAVE', this.master]);
      const [session, ...args] = params;
      if (typeof session !== 'string' || !this.sessions.has(session)) {
        throw new XapiFault(['SESSION_INVALID', String(session)]);
      }
      if (custom) return custom(args, address);
      if (method === 'host.get_all_records') {
        return Object.fromEntries(this.addresses.map((a, i) => [`OpaqueRef:host-${i}`, { address: a }]));
      }
      if (method === 'session.logout') {
        this.sessions.delete(session);
        return undefined;
      }
      throw new XapiFault(['MESSAGE_METHOD_UNKNOWN', method]);
    };
  }
}

const clients: XapiClient[] = [];
let pool: FakePool;

function clientOptions(overrides: Partial<XapiClientOptions> = {}): XapiClientOptions {
  return {
    hosts: [SLAVE_A],
    port: pool.port,
    protocol: 'http',
    username: USER,
    password: PASSWORD,
    callTimeoutMs: 1_000,
    loginTimeoutMs: 3_000,
    taskPollIntervalMs: 10,
    ...overrides,
  };
}

async function connect(overrides: Partial<XapiClientOptions> = {}): Promise<XapiClient> {
  const client = await XapiClient.connect(clientOptions(overrides));
  clients.push(client);
  return client;
}

/** The rejection of `promise`, checked to be free of the password wherever it could hide. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  expectNoPassword(error);
  return error as Error;
}

function expectNoPassword(error: unknown): void {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    expect(current.message).not.toContain(PASSWORD);
    expect(String(current.stack)).not.toContain(PASSWORD);
    expect(JSON.stringify(current)).not.toContain(PASSWORD);
  }
}

beforeAll(async () => {
  pool = await FakePool.start([SLAVE_A, MASTER, SLAVE_B], MASTER);
});

afterAll(async () => {
  await pool.stopAll();
});

beforeEach(async () => {
  await pool.reset();
});

afterEach(async () => {
  for (const client of clients.splice(0)) await client.logout();
});

describe('lab XML-RPC server speaks like xapi', () => {
  let server: LabXmlRpcServer;
  const seen: Array<{ method: string; params: unknown[] }> = [];

  beforeAll(async () => {
    server = createLabXmlRpcServer({
      address: WIRE_HOST,
      port: 0,
      handler: (method, params) => {
        seen.push({ method, params });
        if (method === 'fault')
          throw new XapiFault(['HOST_NOT_ENOUGH_FREE_MEMORY', '2147483648', '1073741824']);
        if (method === 'crash') throw new Error('boom <here>');
        if (method === 'void') return undefined;
        return {
          ref: 'OpaqueRef:a<b>&"c\u0001d\te',
          memory: '4294967296',
          live: true,
          progress: 0.1,
          when: new Date(Date.UTC(2024, 0, 1, 12, 0, 0)),
          set: ['x'],
          empty: [],
        };
      },
    });
    await server.start();
  });

  afterAll(async () => {
    await server.stop();
  });

  const post = (body: string, path = '/') =>
    fetch(`http://${WIRE_HOST}:${server.port}${path}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'text/xml' },
    });
  const call = (method: string) =>
    `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params><param><value>OpaqueRef:s</value></param><param><value><i8>4294967296</i8></value></param></params></methodCall>`;
  const envelope = (members: string) =>
    `<?xml version="1.0"?><methodResponse><params><param><value><struct>${members}</struct></value></param></params></methodResponse>`;

  it('answers a success envelope with bare strings, typed scalars, and UTC datetimes', async () => {
    const response = await post(call('anything'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/xml');
    expect(await response.text()).toBe(
      envelope(
        '<member><name>Status</name><value>Success</value></member><member><name>Value</name><value><struct>' +
          '<member><name>ref</name><value>OpaqueRef:a&lt;b&gt;&amp;&quot;cd\te</value></member>' +
          '<member><name>memory</name><value>4294967296</value></member>' +
          '<member><name>live</name><value><boolean>1</boolean></value></member>' +
          '<member><name>progress</name><value><double>0.1</double></value></member>' +
          '<member><name>when</name><value><dateTime.iso8601>20240101T12:00:00Z</dateTime.iso8601></value></member>' +
          '<member><name>set</name><value><array><data><value>x</value></data></array></value></member>' +
          '<member><name>empty</name><value><array><data></data></array></value></member>' +
          '</struct></value></member>',
      ),
    );
    expect(seen.at(-1)).toEqual({ method: 'anything', params: ['OpaqueRef:s', '4294967296'] });
  });

  it('accepts POST /RPC2 and marshals void as an empty value', async () => {
    const response = await post(call('void'), '/RPC2');
    expect(await response.text()).toBe(
      envelope(
        '<member><name>Status</name><value>Success</value></member><member><name>Value</name><value></value></member>',
      ),
    );
  });

  it('answers XapiFault and other errors as Failure envelopes', async () => {
    const failure = (description: string[]) =>
      envelope(
        `<member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data>${description.map((d) => `<value>${d}</value>`).join('')}</data></array></value></member>`,
      );
    expect(await (await post(call('fault'))).text()).toBe(
      failure(['HOST_NOT_ENOUGH_FREE_MEMORY', '2147483648', '1073741824']),
    );
    expect(await (await post(call('crash'))).text()).toBe(failure(['INTERNAL_ERROR', 'boom &lt;here&gt;']));
  });

  it('answers HTTP 500 with an HTML page to malformed XML and to a GET', async () => {
    const malformed = await post('<methodCall><methodName>x</methodName><params>');
    expect(malformed.status).toBe(500);
    expect(await malformed.text()).toMatch(/^<html>.*Parse_error/);
    const get = await fetch(`http://${WIRE_HOST}:${server.port}/`);
    expect(get.status).toBe(500);
    expect(await get.text()).toMatch(/^<html>/);
  });

  it('formats doubles like printf %.16g', () => {
    expect(xmlRpcValueFragment([1.5, 1e20, 1e-7, 1234567890123456800, 3])).toBe(
      '<value><array><data><value><double>1.5</double></value><value><double>1e+20</double></value>' +
        '<value><double>1e-07</double></value><value><double>1.234567890123457e+18</double></value>' +
        '<value><double>3</double></value></data></array></value>',
    );
  });

  it('stop() cuts keep-alive connections, start() listens again on the same port', async () => {
    const agent = new http.Agent({ keepAlive: true });
    const port = server.port;
    const request = () =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(
          {
            host: WIRE_HOST,
            port,
            path: '/',
            method: 'POST',
            agent,
            headers: { 'content-type': 'text/xml' },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(call('void'));
      });
    expect(await request()).toBe(200);
    const closed = new Promise<void>((resolve) => {
      const [socket] = Object.values(agent.freeSockets).flat();
      socket?.once('close', () => resolve());
    });
    await server.stop();
    await closed;
    expect(server.running()).toBe(false);
    await expect(request()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await server.start();
    expect(server.port).toBe(port);
    expect(await request()).toBe(200);
    agent.destroy();
  });
});

describe('XapiClient login', () => {
  it('follows HOST_IS_SLAVE from a pool member to the master and learns all host addresses', async () => {
    const client = await connect({ hosts: [SLAVE_A] });
    expect(client.masterAddress).toBe(MASTER);
    expect(pool.callsOf('session.login_with_password').map((c) => c.host)).toEqual([SLAVE_A, MASTER]);
    expect(pool.callsOf('session.login_with_password', MASTER)[0]?.params.slice(0, 2)).toEqual([
      USER,
      PASSWORD,
    ]);
    expect([...client.knownAddresses].sort()).toEqual([SLAVE_A, MASTER, SLAVE_B]);
    expect(client.knownAddresses[0]).toBe(MASTER);
  });

  it('backs off while the master is down and logs in when it comes back', async () => {
    await pool.server(MASTER).stop();
    const connecting = connect({ hosts: [SLAVE_A], loginTimeoutMs: 10_000 });
    // Two rounds of "member names the master, master refuses" prove it loops instead of giving up.
    let rounds = 0;
    await pool.waitForCall((c) => c.host === SLAVE_A && ++rounds === 2);
    await pool.server(MASTER).start();
    const client = await connecting;
    expect(client.masterAddress).toBe(MASTER);
    expect(pool.callsOf('session.login_with_password', MASTER)).toHaveLength(1);
  });

  it('gives up within the login budget when no master answers', async () => {
    await pool.server(MASTER).stop();
    const started = Date.now();
    const error = await rejectionOf(connect({ hosts: [SLAVE_A], loginTimeoutMs: 400 }));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(error).toBeInstanceOf(XapiTransportError);
    expect(error.message).toMatch(/could not log in .*127\.0\.0\.41.*127\.0\.0\.42/);
  });

  it('retries a host that is still booting', async () => {
    let booting = 2;
    pool.methods.set('session.login_with_password', () => {
      if (booting-- > 0) throw new XapiFault(['HOST_STILL_BOOTING']);
      pool.sessions.add('OpaqueRef:session-booted');
      return 'OpaqueRef:session-booted';
    });
    const client = await connect({ hosts: [MASTER] });
    expect(client.masterAddress).toBe(MASTER);
    expect(pool.callsOf('session.login_with_password')).toHaveLength(3);
  });

  it('does not retry SESSION_AUTHENTICATION_FAILED', async () => {
    const error = await rejectionOf(connect({ hosts: [MASTER], password: 'wrong' }));
    expect(error).toBeInstanceOf(XapiError);
    expect(error).toMatchObject({
      xapiCode: 'SESSION_AUTHENTICATION_FAILED',
      params: [USER, 'Authentication failure'],
    });
    expect(pool.callsOf('session.login_with_password')).toHaveLength(1);
  });

  it('keeps the password out of errors even when the server echoes it', async () => {
    pool.methods.set('session.login_with_password', (params) => {
      throw new XapiFault(['SESSION_AUTHENTICATION_FAILED', USER, `bad password ${String(params[1])}`]);
    });
    const error = await rejectionOf(connect({ hosts: [MASTER] }));
    expect(error).toMatchObject({
      xapiCode: 'SESSION_AUTHENTICATION_FAILED',
      params: [USER, 'bad password ***'],
    });
  });
});

describe('XapiClient calls', () => {
  it('logs in again after SESSION_INVALID and runs the call once', async () => {
    const client = await connect();
    pool.sessions.clear(); // what a master restart does
    pool.methods.set('host.disable', () => undefined);
    await client.call('host.disable', ['OpaqueRef:h1']);
    expect(pool.callsOf('session.login_with_password', MASTER)).toHaveLength(2);
    const disables = pool.callsOf('host.disable');
    expect(disables).toHaveLength(2);
    // The first attempt was refused by the session check, the second carried the new session.
    expect(disables[1]?.params).toEqual(['OpaqueRef:session-2', 'OpaqueRef:h1']);
    expect(pool.sessions.has('OpaqueRef:session-2')).toBe(true);
  });

  it('retries a SESSION_INVALID only once', async () => {
    const client = await connect();
    pool.methods.set('VM.get_all_records', () => {
      pool.sessions.clear();
      throw new XapiFault(['SESSION_INVALID', 'x']);
    });
    const error = await rejectionOf(client.call('VM.get_all_records'));
    expect(error).toMatchObject({ xapiCode: 'SESSION_INVALID' });
    expect(pool.callsOf('VM.get_all_records')).toHaveLength(2);
  });

  it('follows the master when it moved (HOST_IS_SLAVE on a call)', async () => {
    const client = await connect({ hosts: [MASTER] });
    pool.master = SLAVE_B;
    pool.methods.set('pool.get_all', () => ['OpaqueRef:pool']);
    expect(await client.call('pool.get_all')).toEqual(['OpaqueRef:pool']);
    expect(client.masterAddress).toBe(SLAVE_B);
    expect(pool.callsOf('pool.get_all').map((c) => c.host)).toEqual([MASTER, SLAVE_B]);
  });

  it('keeps XAPI error codes and parameters verbatim', async () => {
    const client = await connect();
    pool.methods.set('VM.assert_can_boot_here', () => {
      throw new XapiFault(['HOST_NOT_ENOUGH_FREE_MEMORY', '2147483648', '1073741824']);
    });
    const error = await rejectionOf(client.call('VM.assert_can_boot_here', ['OpaqueRef:vm', 'OpaqueRef:h']));
    expect(error).toBeInstanceOf(XapiError);
    expect(error).toMatchObject({
      xapiCode: 'HOST_NOT_ENOUGH_FREE_MEMORY',
      params: ['2147483648', '1073741824'],
      method: 'VM.assert_can_boot_here',
    });
    expect(pool.callsOf('VM.assert_can_boot_here')).toHaveLength(1);
  });

  it('does not retry a mutating call that timed out', async () => {
    const client = await connect();
    pool.methods.set('host.reboot', () => new Promise(() => {}));
    const started = Date.now();
    const error = await rejectionOf(client.call('host.reboot', ['OpaqueRef:h'], { timeoutMs: 200 }));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error).toBeInstanceOf(XapiCallTransportError);
    expect(error).toMatchObject({
      causeCode: 'ETIMEDOUT',
      requestMayHaveArrived: true,
      method: 'host.reboot',
    });
    expect(pool.callsOf('host.reboot')).toHaveLength(1);
  });

  it('retries a read-only call across a connection reset', async () => {
    const client = await connect();
    let resets = 1;
    pool.methods.set('host.get_record', async () => {
      if (resets-- > 0) {
        await pool.server(MASTER).stop();
        await pool.server(MASTER).start();
      }
      return { name_label: 'h1' };
    });
    expect(await client.call('host.get_record', ['OpaqueRef:h'])).toEqual({ name_label: 'h1' });
    expect(pool.callsOf('host.get_record')).toHaveLength(2);
  });

  it('does not retry a mutating call across a connection reset', async () => {
    const client = await connect();
    pool.methods.set('host.enable', async () => {
      await pool.server(MASTER).stop();
      await pool.server(MASTER).start();
    });
    const error = await rejectionOf(client.call('host.enable', ['OpaqueRef:h']));
    expect(error).toBeInstanceOf(XapiCallTransportError);
    expect(error).toMatchObject({ causeCode: 'ECONNRESET', requestMayHaveArrived: true });
    expect(pool.callsOf('host.enable')).toHaveLength(1);
  });

  it('retries a mutating call whose connection was refused, once the master is back', async () => {
    const warnings: object[] = [];
    const logger = { debug() {}, warn: (obj: object) => warnings.push(obj) };
    const client = await connect({ loginTimeoutMs: 10_000, logger });
    pool.methods.set('host.disable', () => undefined);
    await pool.server(MASTER).stop();
    const calling = client.call('host.disable', ['OpaqueRef:h']);
    // Re-login asks the members, which name the stopped master: it is looking for the master.
    await pool.waitForCall((c) => c.host !== MASTER && c.method === 'session.login_with_password');
    await pool.server(MASTER).start();
    await calling;
    expect(warnings).toEqual([{ method: 'host.disable', host: MASTER, cause: 'ECONNREFUSED' }]);
    expect(pool.callsOf('host.disable')).toHaveLength(1);
  });

  it('sends int64 as decimal strings and reads them back as numbers', async () => {
    const client = await connect();
    const xapi = new XapiPool(client);
    pool.methods.set('test.echo', () => 'ok');
    await client.call('test.echo', [
      4294967296,
      2 ** 53 - 1,
      2n ** 60n,
      int64(7),
      0.5,
      xapiDouble(60),
      new Date(Date.UTC(2024, 0, 1, 12, 0, 0)),
      { live: 'true', count: 3 },
    ]);
    const [echo] = pool.callsOf('test.echo');
    expect(echo?.params.slice(1)).toEqual([
      '4294967296',
      '9007199254740991',
      '1152921504606846976',
      '7',
      0.5,
      60,
      new Date(Date.UTC(2024, 0, 1, 12, 0, 0)),
      { live: 'true', count: '3' },
    ]);

    pool.methods.set('host_metrics.get_all_records', () => ({
      'OpaqueRef:m1': { live: true, memory_total: '4294967296', memory_free: '9007199254740991' },
    }));
    pool.methods.set('host.compute_free_memory', () => '68719476736');
    pool.methods.set('host.get_servertime', () => new Date(Date.UTC(2024, 5, 30, 23, 59, 59)));
    expect(await xapi.getHostMetrics()).toEqual(
      new Map([
        ['OpaqueRef:m1', { ref: 'OpaqueRef:m1', live: true, memoryTotal: 2 ** 32, memoryFree: 2 ** 53 - 1 }],
      ]),
    );
    expect(await xapi.computeFreeMemory('OpaqueRef:h')).toBe(2 ** 36);
    expect((await xapi.getServertime('OpaqueRef:h')).toISOString()).toBe('2024-06-30T23:59:59.000Z');
  });

  it('calls HA and other_config methods as xapi declares them', async () => {
    const client = await connect();
    const xapi = new XapiPool(client, { haTimeoutMs: 2_000 });
    const tasks = new Map<string, string>();
    pool.methods.set('Async.pool.enable_ha', (args) => {
      tasks.set('OpaqueRef:task-ha', JSON.stringify(args));
      return 'OpaqueRef:task-ha';
    });
    pool.methods.set('task.get_record', ([task]) => taskRecord(String(task), 'success', '<value></value>'));
    pool.methods.set('task.destroy', () => undefined);
    pool.methods.set('pool.remove_from_other_config', () => undefined);
    pool.methods.set('pool.add_to_other_config', () => undefined);
    await xapi.enableHa(['OpaqueRef:sr1'], { timeout: '60' });
    expect(pool.callsOf('Async.pool.enable_ha')[0]?.params.slice(1)).toEqual([
      ['OpaqueRef:sr1'],
      { timeout: '60' },
    ]);
    await xapi.setPoolOtherConfigKey('OpaqueRef:pool', 'auto_poweron', 'false');
    await xapi.setPoolOtherConfigKey('OpaqueRef:pool', 'crb_run', undefined);
    expect(
      pool.calls
        .filter((c) => c.method.startsWith('pool.') && c.method.endsWith('other_config'))
        .map((c) => [c.method, ...c.params.slice(1)]),
    ).toEqual([
      ['pool.remove_from_other_config', 'OpaqueRef:pool', 'auto_poweron'],
      ['pool.add_to_other_config', 'OpaqueRef:pool', 'auto_poweron', 'false'],
      ['pool.remove_from_other_config', 'OpaqueRef:pool', 'crb_run'],
    ]);
  });
});

function taskRecord(ref: string, status: string, result = '', errorInfo: string[] = []) {
  return {
    uuid: `uuid-${ref}`,
    name_label: 'Async.VM.pool_migrate',
    status,
    progress: status === 'pending' ? 0.5 : 1,
    result,
    error_info: errorInfo,
  };
}

describe('XapiClient.callAsync', () => {
  /** Async.VM.pool_migrate creates a task; `outcome` decides what task.get_record says on each poll. */
  function serveTask(outcome: (poll: number) => ReturnType<typeof taskRecord>) {
    const task = 'OpaqueRef:task-1';
    let polls = 0;
    pool.methods.set('Async.VM.pool_migrate', () => task);
    pool.methods.set('task.get_record', ([ref]) => {
      if (ref !== task) throw new XapiFault(['HANDLE_INVALID', 'task', String(ref)]);
      return outcome(++polls);
    });
    pool.methods.set('task.cancel', () => undefined);
    pool.methods.set('task.destroy', () => undefined);
    return task;
  }
  const migrate = (client: XapiClient, options: { timeoutMs?: number; signal?: AbortSignal } = {}) =>
    client.callAsync('VM.pool_migrate', ['OpaqueRef:vm', 'OpaqueRef:h2', { live: 'true' }], options);

  it('polls until success, parses the result fragment and destroys the task', async () => {
    const client = await connect();
    const task = serveTask((poll) =>
      poll < 3
        ? taskRecord(task, 'pending')
        : taskRecord(task, 'success', xmlRpcValueFragment('OpaqueRef:new-vm')),
    );
    expect(await migrate(client)).toBe('OpaqueRef:new-vm');
    expect(pool.callsOf('Async.VM.pool_migrate')[0]?.params.slice(1)).toEqual([
      'OpaqueRef:vm',
      'OpaqueRef:h2',
      { live: 'true' },
    ]);
    expect(pool.callsOf('task.get_record')).toHaveLength(3);
    expect(pool.callsOf('task.destroy').map((c) => c.params[1])).toEqual([task]);
    expect(pool.callsOf('task.cancel')).toHaveLength(0);
  });

  it('returns an empty string for a void result', async () => {
    const client = await connect();
    const task = serveTask(() => taskRecord(task, 'success', '<value></value>'));
    expect(await migrate(client)).toBe('');
  });

  it('throws the task error_info verbatim and destroys the task', async () => {
    const client = await connect();
    const info = ['VM_MIGRATE_FAILED', 'OpaqueRef:vm', 'OpaqueRef:h1', 'OpaqueRef:h2', 'xenopsd said no'];
    const task = serveTask(() => taskRecord(task, 'failure', '', info));
    const error = await rejectionOf(migrate(client));
    expect(error).toBeInstanceOf(XapiError);
    expect(error).toMatchObject({
      xapiCode: 'VM_MIGRATE_FAILED',
      params: info.slice(1),
      method: 'VM.pool_migrate',
    });
    expect(pool.callsOf('task.destroy')).toHaveLength(1);
  });

  it('reports a cancelled task as TASK_CANCELLED', async () => {
    const client = await connect();
    const task = serveTask(() => taskRecord(task, 'cancelled', '', ['TASK_CANCELLED', task]));
    const error = await rejectionOf(migrate(client));
    expect(error).toMatchObject({ xapiCode: 'TASK_CANCELLED', params: [task] });
  });

  it('cancels and destroys the task on timeout', async () => {
    const client = await connect();
    const task = serveTask(() => taskRecord(task, 'pending'));
    const started = Date.now();
    const error = await rejectionOf(migrate(client, { timeoutMs: 250 }));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(pool.callsOf('task.cancel').map((c) => c.params[1])).toEqual([task]);
    expect(pool.callsOf('task.destroy').map((c) => c.params[1])).toEqual([task]);
  });

  it('cancels and destroys the task when the signal aborts', async () => {
    const client = await connect();
    const task = serveTask(() => taskRecord(task, 'pending'));
    const controller = new AbortController();
    const reason = new Error('operator aborted');
    let polls = 0;
    void pool
      .waitForCall((c) => c.method === 'task.get_record' && ++polls === 2)
      .then(() => controller.abort(reason));
    const error = await rejectionOf(migrate(client, { timeoutMs: 10_000, signal: controller.signal }));
    expect(error).toBe(reason);
    expect(pool.callsOf('task.cancel')).toHaveLength(1);
    expect(pool.callsOf('task.destroy')).toHaveLength(1);
  });

  it('reports a task that vanished with the master as lost', async () => {
    const client = await connect();
    const task = serveTask(() => taskRecord(task, 'pending'));
    let polls = 0;
    void pool
      .waitForCall((c) => c.method === 'task.get_record' && ++polls === 2)
      .then(() => {
        // A master restart forgets sessions and tasks.
        pool.sessions.clear();
        pool.methods.set('task.get_record', ([ref]) => {
          throw new XapiFault(['HANDLE_INVALID', 'task', String(ref)]);
        });
      });
    const error = await rejectionOf(migrate(client));
    expect(error).toBeInstanceOf(XapiTransportError);
    expect(error.message).toContain('lost');
  });
});

describe('XapiClient against broken or foreign servers', () => {
  let htmlServer: http.Server;
  let silentServer: net.Server;
  const silentSockets = new Set<net.Socket>();

  beforeAll(async () => {
    htmlServer = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.headers['x-truncate']) return;
        res.writeHead(500, { 'content-type': 'text/html' });
        res.end('<html><body><h1>HTTP 500 internal server error</h1></body></html>');
      });
    });
    silentServer = net.createServer((socket) => {
      silentSockets.add(socket);
      socket.on('close', () => silentSockets.delete(socket));
    });
    await new Promise<void>((resolve) => htmlServer.listen(0, HTML_HOST, resolve));
    await new Promise<void>((resolve) => silentServer.listen(0, SILENT_HOST, resolve));
  });

  afterAll(async () => {
    for (const socket of silentSockets) socket.destroy();
    await new Promise((resolve) => htmlServer.close(resolve));
    await new Promise((resolve) => silentServer.close(resolve));
  });

  const portOf = (server: http.Server | net.Server) => (server.address() as net.AddressInfo).port;

  it('turns an HTML 500 page into XapiProtocolError, without retrying', async () => {
    const error = await rejectionOf(connect({ hosts: [HTML_HOST], port: portOf(htmlServer) }));
    expect(error).toBeInstanceOf(XapiProtocolError);
    expect(error.message).toContain('HTTP 500');
  });

  it('turns a truncated XML answer into XapiProtocolError', async () => {
    const truncated = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/xml' });
        res.end('<?xml version="1.0"?><methodResponse><params><param><value><struct><member>');
      });
    });
    await new Promise<void>((resolve) => truncated.listen(0, HTML_HOST, resolve));
    try {
      const error = await rejectionOf(
        xapiCall({ address: HTML_HOST, port: portOf(truncated), protocol: 'http' }, 'host.get_all', ['s'], {
          timeoutMs: 1_000,
        }),
      );
      expect(error).toBeInstanceOf(XapiProtocolError);
    } finally {
      await new Promise((resolve) => truncated.close(resolve));
    }
  });

  it('gives up on a server that never answers within the timeout', async () => {
    const started = Date.now();
    const direct = await rejectionOf(
      xapiCall(
        { address: SILENT_HOST, port: portOf(silentServer), protocol: 'http' },
        'host.get_all',
        ['s'],
        {
          timeoutMs: 200,
        },
      ),
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(direct).toMatchObject({ causeCode: 'ETIMEDOUT', requestMayHaveArrived: true });

    const loginStarted = Date.now();
    const error = await rejectionOf(
      connect({ hosts: [SILENT_HOST], port: portOf(silentServer), callTimeoutMs: 200, loginTimeoutMs: 300 }),
    );
    expect(Date.now() - loginStarted).toBeLessThan(1_500);
    expect(error).toBeInstanceOf(XapiTransportError);
  });
});

describe('XapiClient over HTTPS', () => {
  let dir: string;
  let tlsPool: FakePool;
  let caFile: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xapi-tls-'));
    const keyFile = join(dir, 'key.pem');
    caFile = join(dir, 'cert.pem');
    execFileSync(
      '/usr/bin/openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        caFile,
        '-days',
        '1',
        '-subj',
        `/CN=${TLS_HOST}`,
        '-addext',
        `subjectAltName=IP:${TLS_HOST}`,
      ],
      { stdio: 'ignore' },
    );
    tlsPool = await FakePool.start([TLS_HOST], TLS_HOST, {
      key: readFileSync(keyFile, 'utf8'),
      cert: readFileSync(caFile, 'utf8'),
    });
  });

  afterAll(async () => {
    await tlsPool.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  const tlsOptions = (overrides: Partial<XapiClientOptions>) => ({
    hosts: [TLS_HOST],
    port: tlsPool.port,
    protocol: 'https' as const,
    loginTimeoutMs: 5_000,
    ...overrides,
  });

  it('logs in when the CA file is given', async () => {
    const client = await connect(tlsOptions({ caFile }));
    expect(client.masterAddress).toBe(TLS_HOST);
    expect(tlsPool.callsOf('session.login_with_password')).toHaveLength(1);
  });

  it('refuses an unknown certificate at once, and accepts it only when told to be insecure', async () => {
    const loginsBefore = tlsPool.callsOf('session.login_with_password').length;
    const started = Date.now();
    const error = await rejectionOf(connect(tlsOptions({})));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error).toBeInstanceOf(XapiCallTransportError);
    expect((error as XapiCallTransportError).causeCode).toMatch(/SELF_SIGNED|CERT/);
    expect(error).toMatchObject({ requestMayHaveArrived: false });
    // The TLS handshake failed, so xapi never saw the credentials.
    expect(tlsPool.callsOf('session.login_with_password')).toHaveLength(loginsBefore);

    const otherCa = join(dir, 'other.pem');
    writeFileSync(
      otherCa,
      execFileSync(
        '/usr/bin/openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          '/dev/null',
          '-subj',
          '/CN=other',
          '-days',
          '1',
        ],
        { stdio: ['ignore', 'pipe', 'ignore'] },
      ),
    );
    await expect(connect(tlsOptions({ caFile: otherCa }))).rejects.toBeInstanceOf(XapiTransportError);

    const insecure = await connect(tlsOptions({ tlsInsecure: true }));
    expect(insecure.masterAddress).toBe(TLS_HOST);
  });
});
