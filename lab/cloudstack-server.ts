/**
 * The lab's CloudStack management server: the API endpoint over node:http with signature checks,
 * `listClusters`, `listHosts` and `updateCluster` for one XenServer cluster whose hosts come from
 * the pool model, with CloudStack's error shapes and status codes (protocols.md B1-B7).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature } from '../src/cloudstack/sign.js';
import type { OperationLog } from './operation-log.js';

export interface LabCloudStackHostSource {
  readonly cluster: {
    id: string;
    name: string;
    podId: string;
    podName: string;
    zoneId: string;
    zoneName: string;
  };
  /** Live state of each XAPI host as the pool model sees it. liveChangedAt = Date.now() of the last change. */
  hosts(): Array<{ id: string; name: string; ipAddress: string; live: boolean; liveChangedAt: number }>;
}

export interface LabCloudStackOptions {
  address: string;
  /** 0 = pick a free one. */
  port: number;
  apiKey: string;
  secretKey: string;
  source: LabCloudStackHostSource;
  log: OperationLog;
  timings: { unmanageDelayMs: number; reconnectDelayMs: number };
}

export interface LabCloudStack {
  /** http://address:port/client/api */
  readonly url: string;
  managedState(): string;
  /** Up | Disconnected | Connecting | Alert */
  hostState(hostId: string): string;
  readonly faults: {
    /** The next `times` calls of `command` fail with `errorCode` (default 530) and `errorText`. */
    failNext(command: string, times: number, errorCode?: number, errorText?: string): void;
    /** The next `times` calls of `command` are accepted and never answered (until stop). */
    hangNext(command: string, times: number): void;
    /** While on, hosts stay Disconnected after the cluster becomes Managed again. */
    neverReconnect(on: boolean): void;
  };
  stop(): Promise<void>;
}

type Params = Record<string, string>;
type LabHost = ReturnType<LabCloudStackHostSource['hosts']>[number];

const API_PATH = '/client/api';
const AUTH_FAILED = 'unable to verify user credentials and/or request signature';
const INTERNAL_ERROR = 'Internal error executing command, please contact your system administrator';
// cserrorcode values from CSExceptionErrorCode.java.
const CS_SERVER_API_EXCEPTION = 9999;
const CS_INVALID_PARAMETER = 4350;
const CS_CLOUD_RUNTIME = 4250;
const MAX_PAGE_SIZE = 500;
const MAX_FORM_BYTES = 1024 * 1024;
const AGENT_VERSION = '4.19.0.0';
const HYPERVISOR_VERSION = '8.2.1';

const SIMULATED_COMMANDS = new Set(['listClusters', 'listHosts', 'updateCluster']);
// Parameters the real commands accept that the lab does not model: refusing them beats silently
// answering as if they had been applied. Parameters the real server does not know are ignored, as there.
const UNSIMULATED_PARAMS: Record<string, readonly string[]> = {
  listClusters: [
    'podid',
    'zoneid',
    'hypervisor',
    'clustertype',
    'allocationstate',
    'managedstate',
    'keyword',
    'arch',
  ],
  listHosts: [
    'podid',
    'zoneid',
    'state',
    'resourcestate',
    'hypervisor',
    'hahost',
    'virtualmachineid',
    'outofbandmanagementenabled',
    'outofbandmanagementpowerstate',
    'managementserverid',
    'keyword',
    'arch',
  ],
  updateCluster: ['clustername', 'hypervisor', 'clustertype', 'allocationstate', 'arch'],
};

/** A CloudStack error answer: HTTP status = errorCode. */
class ApiFailure extends Error {
  constructor(
    readonly errorCode: number,
    readonly csErrorCode: number,
    readonly errorText: string,
  ) {
    super(errorText);
  }
}

export async function startLabCloudStack(options: LabCloudStackOptions): Promise<LabCloudStack> {
  const { source, log, timings } = options;
  const cluster = source.cluster;

  let managedState = 'Managed';
  // When the cluster last became Managed; -Infinity = it was Managed before the lab started.
  let managedAt = Number.NEGATIVE_INFINITY;
  let unmanagedAt: number | undefined;
  let neverReconnect = false;
  // Only a cluster made Managed again while the fault is on keeps its hosts out: hosts already back stay Up.
  let neverReconnectFrom = Number.NEGATIVE_INFINITY;
  let reconnectAllowedAt = Number.NEGATIVE_INFINITY;
  let stopped = false;
  const startedAt = Date.now();

  const failures = new Map<string, { remaining: number; errorCode: number; errorText: string }>();
  const hangs = new Map<string, number>();
  const waits = new Set<{ timer: NodeJS.Timeout; done: (completed: boolean) => void }>();

  const setManagedState = (to: string) => {
    const from = managedState;
    if (from === to) return;
    managedState = to;
    if (to === 'Managed') managedAt = Date.now();
    else if (from === 'Managed') unmanagedAt = Date.now();
    log.record({ kind: 'cloudstack.managedstate', detail: { from, to } });
  };

  /** Resolves true after `ms`, or false if the lab stops first. */
  const wait = (ms: number) =>
    new Promise<boolean>((resolve) => {
      const entry = {
        timer: setTimeout(() => entry.done(true), ms),
        done: (completed: boolean) => {
          clearTimeout(entry.timer);
          waits.delete(entry);
          resolve(completed);
        },
      };
      waits.add(entry);
    });

  const hostStatus = (host: LabHost, now: number): string => {
    if (managedState !== 'Managed') return 'Disconnected';
    if (neverReconnect && managedAt !== Number.NEGATIVE_INFINITY && managedAt >= neverReconnectFrom)
      return 'Disconnected';
    if (!host.live) return 'Alert';
    // The direct-agent scan reconnects hosts some time after the cluster is Managed and the host answers.
    // A host live since before this server started was already connected when it came up.
    const cameLiveAt = host.liveChangedAt <= startedAt ? Number.NEGATIVE_INFINITY : host.liveChangedAt;
    const since = Math.max(managedAt, reconnectAllowedAt, cameLiveAt);
    return now - since < timings.reconnectDelayMs ? 'Connecting' : 'Up';
  };

  const clusterJson = () => ({
    id: cluster.id,
    name: cluster.name,
    podid: cluster.podId,
    podname: cluster.podName,
    zoneid: cluster.zoneId,
    zonename: cluster.zoneName,
    hypervisortype: 'XenServer',
    clustertype: 'CloudManaged',
    allocationstate: 'Enabled',
    managedstate: managedState,
    cpuovercommitratio: '1',
    memoryovercommitratio: '1',
  });

  const hostJson = (host: LabHost, now: number) => {
    const state = hostStatus(host, now);
    const disconnectedAt = state === 'Alert' ? host.liveChangedAt : unmanagedAt;
    const connected = state === 'Up' || state === 'Connecting';
    return {
      id: host.id,
      name: host.name,
      state,
      ...(disconnectedAt === undefined ? {} : { disconnected: formatCloudStackDate(disconnectedAt) }),
      type: 'Routing',
      ipaddress: host.ipAddress,
      zoneid: cluster.zoneId,
      zonename: cluster.zoneName,
      podid: cluster.podId,
      podname: cluster.podName,
      version: AGENT_VERSION,
      hypervisor: 'XenServer',
      hypervisorversion: HYPERVISOR_VERSION,
      clusterid: cluster.id,
      clustername: cluster.name,
      clustertype: 'CloudManaged',
      resourcestate: 'Enabled',
      lastpinged: formatCloudStackDate(connected ? now : (disconnectedAt ?? now)),
    };
  };

  const requireCluster = (command: string, name: string, value: string) => {
    if (value !== cluster.id) throw invalidUuid(command, name, value);
  };

  const handlers: Record<string, (params: Params) => Promise<unknown>> = {
    listClusters: async (params) => {
      if (params.id !== undefined) requireCluster('listClusters', 'id', params.id);
      const name = params.name?.toLowerCase();
      // Older servers match name with LIKE '%name%' (case-insensitive in MySQL); the lab does the same
      // so clients that trust an exact match are caught.
      const matches = name === undefined || cluster.name.toLowerCase().includes(name) ? [clusterJson()] : [];
      return listAnswer('listClusters', 'cluster', matches, params);
    },

    listHosts: async (params) => {
      if (params.clusterid !== undefined) requireCluster('listHosts', 'clusterid', params.clusterid);
      const now = Date.now();
      const hosts = source.hosts();
      if (params.id !== undefined && !hosts.some((h) => h.id === params.id)) {
        throw invalidUuid('listHosts', 'id', params.id);
      }
      const name = params.name?.toLowerCase();
      const matches = hosts
        .filter((h) => params.id === undefined || h.id === params.id)
        .filter(() => params.type === undefined || params.type === 'Routing')
        .filter((h) => name === undefined || h.name.toLowerCase().includes(name))
        .map((h) => hostJson(h, now));
      return listAnswer('listHosts', 'host', matches, params);
    },

    updateCluster: async (params) => {
      const id = params.id;
      if (id === undefined) throw missingParameter('updateCluster', 'id');
      requireCluster('updateCluster', 'id', id);
      const wanted = params.managedstate;
      if (wanted !== undefined && wanted !== 'Managed' && wanted !== 'Unmanaged') {
        throw new ApiFailure(
          431,
          CS_INVALID_PARAMETER,
          `Unable to resolve Managed State '${wanted}' to a supported state`,
        );
      }
      // UpdateClusterCmd answers with the cluster object it read before updating.
      const before = clusterJson();
      if (wanted === 'Managed') setManagedState('Managed');
      else if (wanted === 'Unmanaged' && managedState !== 'Unmanaged') {
        // Synchronous like the real one: the request blocks while hosts are disconnected.
        setManagedState('PrepareUnmanaged');
        if (!(await wait(timings.unmanageDelayMs))) return undefined;
        if (managedState === 'PrepareUnmanaged') setManagedState('Unmanaged');
      }
      return { updateclusterresponse: { cluster: before } };
    },
  };

  const takeFault = (command: string): 'hang' | { errorCode: number; errorText: string } | undefined => {
    const hangsLeft = hangs.get(command) ?? 0;
    if (hangsLeft > 0) {
      hangs.set(command, hangsLeft - 1);
      log.record({ kind: 'cloudstack.fault', detail: { command, fault: 'hang' } });
      return 'hang';
    }
    const failure = failures.get(command);
    if (failure !== undefined && failure.remaining > 0) {
      failure.remaining--;
      log.record({
        kind: 'cloudstack.fault',
        detail: { command, fault: 'fail', errorCode: failure.errorCode },
      });
      return failure;
    }
    return undefined;
  };

  const isAuthentic = (params: Params): boolean => {
    const apiKey = paramOf(params, 'apikey');
    if (apiKey !== options.apiKey) return false;
    if (paramOf(params, 'signatureversion') === '3') {
      const expires = parseCloudStackDate(paramOf(params, 'expires'));
      if (expires === undefined || expires < Date.now()) return false;
    }
    return verifySignature(params, options.secretKey);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://lab');
    if (url.pathname !== API_PATH) return sendText(res, 404, 'Not Found');
    if (req.method !== 'GET' && req.method !== 'POST') return sendText(res, 405, 'Method Not Allowed');
    const params = await readParams(req, url);
    if (params === undefined) return sendText(res, 413, 'Request Entity Too Large');

    const command = params.command;
    log.record({ kind: 'cloudstack.call', detail: { command, params: withoutCredentials(params) } });
    if (command === undefined)
      return sendError(
        res,
        'errorresponse',
        new ApiFailure(400, CS_SERVER_API_EXCEPTION, 'no command specified'),
      );
    const simulated = SIMULATED_COMMANDS.has(command);
    const responseKey = simulated ? `${command.toLowerCase()}response` : 'errorresponse';
    if (!isAuthentic(params))
      return sendError(res, responseKey, new ApiFailure(401, CS_SERVER_API_EXCEPTION, AUTH_FAILED));
    if (!simulated) {
      const text = `The given command:${command} does not exist or it is not available for user`;
      return sendError(res, responseKey, new ApiFailure(432, CS_SERVER_API_EXCEPTION, text));
    }
    if (params.response?.toLowerCase() !== 'json') {
      const text = 'the lab answers response=json only';
      return sendError(res, responseKey, new ApiFailure(431, CS_SERVER_API_EXCEPTION, text));
    }
    const unsimulated = UNSIMULATED_PARAMS[command]?.find((name) => params[name] !== undefined);
    if (unsimulated !== undefined) {
      const text = `the lab does not simulate parameter ${unsimulated} of ${command}`;
      return sendError(res, responseKey, new ApiFailure(431, CS_SERVER_API_EXCEPTION, text));
    }

    const fault = takeFault(command);
    if (fault === 'hang') return; // stop() destroys the connection.
    if (fault !== undefined) {
      const csErrorCode = fault.errorCode === 530 ? CS_CLOUD_RUNTIME : CS_SERVER_API_EXCEPTION;
      return sendError(res, responseKey, new ApiFailure(fault.errorCode, csErrorCode, fault.errorText));
    }

    try {
      const answer = await handlers[command]?.(params);
      if (answer !== undefined) sendJson(res, 200, answer);
    } catch (error) {
      if (error instanceof ApiFailure) return sendError(res, responseKey, error);
      sendError(res, responseKey, new ApiFailure(530, CS_CLOUD_RUNTIME, INTERNAL_ERROR));
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendText(res, 500, 'lab CloudStack server error');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.address.includes(':') ? `[${options.address}]` : options.address;

  const findHost = (hostId: string): LabHost => {
    const found = source.hosts().find((h) => h.id === hostId);
    if (found === undefined) throw new Error(`lab CloudStack: no host with id ${hostId}`);
    return found;
  };

  return {
    url: `http://${host}:${port}${API_PATH}`,
    managedState: () => managedState,
    hostState: (hostId) => hostStatus(findHost(hostId), Date.now()),
    faults: {
      failNext(command, times, errorCode = 530, errorText = INTERNAL_ERROR) {
        failures.set(command, { remaining: times, errorCode, errorText });
      },
      hangNext(command, times) {
        hangs.set(command, times);
      },
      neverReconnect(on) {
        if (neverReconnect && !on) reconnectAllowedAt = Date.now();
        if (!neverReconnect && on) neverReconnectFrom = Date.now();
        neverReconnect = on;
        log.record({ kind: 'cloudstack.fault', detail: { fault: 'neverReconnect', on } });
      },
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const entry of [...waits]) entry.done(false);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** A list answer: `{count, <item>: [...]}`, or `{}` when nothing matched (no count, no array). */
function listAnswer(command: string, itemName: string, items: unknown[], params: Params): unknown {
  const pageSize = parseListInt(command, params, 'pagesize') ?? MAX_PAGE_SIZE;
  if (pageSize > MAX_PAGE_SIZE) {
    throw new ApiFailure(
      431,
      CS_INVALID_PARAMETER,
      `Page size can't exceed max allowed page size value: ${MAX_PAGE_SIZE}`,
    );
  }
  const page = parseListInt(command, params, 'page') ?? 1;
  const shown = pageSize === -1 ? items : items.slice((page - 1) * pageSize, page * pageSize);
  const body: Record<string, unknown> = {};
  if (items.length > 0) body.count = items.length;
  if (shown.length > 0) body[itemName] = shown;
  return { [`${command.toLowerCase()}response`]: body };
}

function parseListInt(command: string, params: Params, name: string): number | undefined {
  const raw = params[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw) || (value < 1 && !(name === 'pagesize' && value === -1))) {
    throw new ApiFailure(
      431,
      CS_SERVER_API_EXCEPTION,
      `Unable to execute API command ${command.toLowerCase()} due to invalid value. Invalid parameter ${name} value=${raw}`,
    );
  }
  return value;
}

function invalidUuid(command: string, name: string, value: string): ApiFailure {
  return new ApiFailure(
    431,
    CS_SERVER_API_EXCEPTION,
    `Unable to execute API command ${command.toLowerCase()} due to invalid value. Invalid parameter ${name} value=${value} due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.`,
  );
}

function missingParameter(command: string, name: string): ApiFailure {
  return new ApiFailure(
    431,
    CS_SERVER_API_EXCEPTION,
    `Unable to execute API command ${command.toLowerCase()} due to missing parameter ${name}`,
  );
}

/** Query parameters, then form-body ones; like the servlet, the first value of a repeated name wins. */
async function readParams(req: http.IncomingMessage, url: URL): Promise<Params | undefined> {
  const params: Params = {};
  const add = (search: URLSearchParams) => {
    for (const [name, value] of search) if (!(name in params)) params[name] = value;
  };
  add(url.searchParams);
  if (
    req.method === 'POST' &&
    (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')
  ) {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_FORM_BYTES) return undefined;
      chunks.push(chunk);
    }
    add(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
  } else {
    req.resume();
  }
  return params;
}

function paramOf(params: Params, lowerCaseName: string): string | undefined {
  const name = Object.keys(params).find((n) => n.toLowerCase() === lowerCaseName);
  return name === undefined ? undefined : params[name];
}

function withoutCredentials(params: Params): Params {
  const kept: Params = {};
  for (const [name, value] of Object.entries(params)) {
    const lower = name.toLowerCase();
    if (lower !== 'apikey' && lower !== 'signature') kept[name] = value;
  }
  return kept;
}

function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
  res.end(JSON.stringify(body));
}

function sendError(res: http.ServerResponse, responseKey: string, failure: ApiFailure): void {
  const body = {
    [responseKey]: {
      uuidList: [],
      errorcode: failure.errorCode,
      cserrorcode: failure.csErrorCode,
      errortext: failure.errorText,
    },
  };
  // Header values must be plain ASCII.
  sendJson(res, failure.errorCode, body, {
    'x-description': failure.errorText.replace(/[^\x20-\x7e]/g, '?'),
  });
}

function sendText(res: http.ServerResponse, status: number, text: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(text);
}

/** `yyyy-MM-dd'T'HH:mm:ssZ` in UTC, e.g. `2024-01-01T12:00:00+0000`, as CloudStack prints dates. */
export function formatCloudStackDate(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+0000');
}

/**
 * The `expires` formats current servers accept: `…Z`, `…+00:00`, `…+0000`, optional fractions,
 * and the legacy `…Z+0000`. Returns epoch ms, or undefined when it does not parse.
 */
function parseCloudStackDate(text: string | undefined): number | undefined {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z?(Z|[+-]\d{2}:?\d{2})$/.exec(
    text ?? '',
  );
  if (match === null) return undefined;
  const [, dateTime, fraction = '0', offset = 'Z'] = match;
  const iso = `${dateTime}.${fraction.padEnd(3, '0').slice(0, 3)}${offset === 'Z' ? 'Z' : `${offset.slice(0, 3)}:${offset.slice(-2)}`}`;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms;
}
