/**
 * CloudStack HTTP API client: signed GET requests, JSON answers mapped to camelCase types, errors
 * kept verbatim. Uses node:http(s) rather than fetch so a private CA file can be trusted.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import {
  CloudStackError,
  CloudStackProtocolError,
  CloudStackTransportError,
  ConfigError,
  formatDuration,
} from '../errors.js';
import { javaUrlEncode, signParams } from './sign.js';
import type { CloudStackCluster, CloudStackHost, ManagedState } from './types.js';

export interface CloudStackClientOptions {
  /** The API endpoint, e.g. `https://cloudstack.example:8443/client/api`. */
  url: string;
  apiKey: string;
  secretKey: string;
  /** Deadline for one whole request (connect, answer, body) of the quick calls. */
  timeoutMs: number;
  /** Deadline for `updateCluster`, which is synchronous and can block for minutes when unmanaging. */
  updateTimeoutMs?: number;
  /** PEM file with the CA that signed the management server's certificate. */
  caFile?: string;
  tlsInsecure?: boolean;
}

const DEFAULT_UPDATE_TIMEOUT_MS = 300_000;
const MAX_BODY_BYTES = 10 * 1024 * 1024;
const BODY_SNIPPET_CHARS = 200;
const PAGE_SIZE = 500;
// A server that keeps answering full pages forever must not keep us looping forever.
const MAX_PAGES = 1000;

const clusterSchema = z.object({
  id: z.string(),
  name: z.string(),
  hypervisortype: z.string(),
  managedstate: z.string(),
  allocationstate: z.string(),
  clustertype: z.string(),
  podid: z.string(),
  podname: z.string(),
  zoneid: z.string(),
  zonename: z.string(),
});

const hostSchema = z.object({
  id: z.string(),
  name: z.string(),
  ipaddress: z.string(),
  state: z.string(),
  resourcestate: z.string(),
  type: z.string(),
  clusterid: z.string().optional(),
  clustername: z.string().optional(),
  hypervisor: z.string().optional(),
});

const clusterListSchema = z.object({
  count: z.number().optional(),
  cluster: z.array(clusterSchema).optional(),
});
const hostListSchema = z.object({ count: z.number().optional(), host: z.array(hostSchema).optional() });
const clusterAnswerSchema = z.object({ cluster: clusterSchema });

const errorCodeSchema = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]);
const errorBodySchema = z.object({
  errorcode: errorCodeSchema,
  cserrorcode: errorCodeSchema.optional(),
  errortext: z.string(),
});

type Params = Record<string, string | undefined>;

interface RawAnswer {
  status: number;
  body: string;
}

export class CloudStackClient {
  readonly #endpoint: URL;
  readonly #apiKey: string;
  readonly #secretKey: string;
  readonly #timeoutMs: number;
  readonly #updateTimeoutMs: number;
  readonly #ca: Buffer | undefined;
  readonly #rejectUnauthorized: boolean;

  constructor(options: CloudStackClientOptions) {
    this.#endpoint = parseEndpoint(options.url);
    this.#apiKey = options.apiKey;
    this.#secretKey = options.secretKey;
    this.#timeoutMs = options.timeoutMs;
    this.#updateTimeoutMs = options.updateTimeoutMs ?? DEFAULT_UPDATE_TIMEOUT_MS;
    this.#ca = options.caFile === undefined ? undefined : readCaFile(options.caFile);
    this.#rejectUnauthorized = options.tlsInsecure !== true;
  }

  /**
   * Clusters matching the filter. Older servers match `name` as a case-insensitive substring
   * (`LIKE %name%`), so with a name only clusters named exactly that are returned: `CLUSTER-1`
   * must never pick `CLUSTER-10`.
   */
  async listClusters(filter: { name?: string; id?: string }): Promise<CloudStackCluster[]> {
    const command = 'listClusters';
    const answer = await this.#call(command, { name: filter.name, id: filter.id }, this.#timeoutMs);
    const list = parseShape(command, clusterListSchema, answer);
    const clusters = (list.cluster ?? []).map(toCluster);
    return filter.name === undefined ? clusters : clusters.filter((c) => c.name === filter.name);
  }

  /** All hosts of a cluster (default type `Routing`), following pages of 500. */
  async listHosts(filter: { clusterId: string; type?: string }): Promise<CloudStackHost[]> {
    const command = 'listHosts';
    const byId = new Map<string, CloudStackHost>();
    for (let page = 1; page <= MAX_PAGES; page++) {
      const params = {
        clusterid: filter.clusterId,
        type: filter.type ?? 'Routing',
        page: String(page),
        pagesize: String(PAGE_SIZE),
      };
      const answer = await this.#call(command, params, this.#timeoutMs);
      const list = parseShape(command, hostListSchema, answer);
      const hosts = list.host ?? [];
      // Keyed by id: a host list that shifts between pages must not yield a host twice.
      for (const host of hosts) byId.set(host.id, toHost(host));
      if (hosts.length < PAGE_SIZE || byId.size >= (list.count ?? 0)) return [...byId.values()];
    }
    throw new CloudStackProtocolError(
      `CloudStack ${command} kept answering full pages after ${MAX_PAGES} pages`,
    );
  }

  /**
   * Sets the cluster's managed state. Synchronous on the server: unmanaging blocks until every host
   * is disconnected. The answer is built from the cluster as it was *before* the update, so its
   * `managedState` may be the old one; read it back with `listClusters`.
   */
  async updateCluster(args: { id: string; managedState: ManagedState }): Promise<CloudStackCluster> {
    const command = 'updateCluster';
    const params = { id: args.id, managedstate: args.managedState };
    const answer = await this.#call(command, params, this.#updateTimeoutMs);
    return toCluster(parseShape(command, clusterAnswerSchema, answer).cluster);
  }

  /** Sends one signed command; returns the object under `<command>response`. */
  async #call(command: string, params: Params, timeoutMs: number): Promise<Record<string, unknown>> {
    const signed: Record<string, string> = { command, response: 'json', apiKey: this.#apiKey };
    for (const [name, value] of Object.entries(params)) if (value !== undefined) signed[name] = value;
    const signature = signParams(signed, this.#secretKey);
    const query = Object.keys(signed)
      .sort()
      .map((name) => `${javaUrlEncode(name)}=${javaUrlEncode(signed[name] ?? '')}`)
      .concat(`signature=${javaUrlEncode(signature)}`)
      .join('&');
    const raw = await this.#get(command, `${this.#endpoint.pathname}?${query}`, timeoutMs);
    const redact = (text: string) =>
      [this.#secretKey, this.#apiKey, signature, javaUrlEncode(signature)].reduce(
        (acc, secret) => (secret === '' ? acc : acc.split(secret).join('[redacted]')),
        text,
      );
    return interpretAnswer(command, raw, redact);
  }

  #get(command: string, path: string, timeoutMs: number): Promise<RawAnswer> {
    const endpoint = this.#endpoint;
    const hostPort = endpoint.host;
    const isHttps = endpoint.protocol === 'https:';
    return new Promise<RawAnswer>((resolve, reject) => {
      let settled = false;
      const finish = (outcome: { answer: RawAnswer } | { error: Error }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if ('answer' in outcome) resolve(outcome.answer);
        else {
          request.destroy();
          reject(outcome.error);
        }
      };
      const transportError = (what: string, cause?: unknown) =>
        new CloudStackTransportError(`CloudStack ${command} to ${hostPort} ${what}`, command, { cause });

      const requestOptions: https.RequestOptions = {
        protocol: endpoint.protocol,
        hostname: endpoint.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: endpoint.port || (isHttps ? 443 : 80),
        path,
        method: 'GET',
        headers: { accept: 'application/json' },
        // One connection per call: calls are rare, and a pooled socket the server already closed
        // would turn into a spurious ECONNRESET.
        agent: false,
        ...(isHttps ? { ca: this.#ca, rejectUnauthorized: this.#rejectUnauthorized } : {}),
      };
      const request = (isHttps ? https : http).request(requestOptions, (response) => {
        const status = response.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        const declared = Number(response.headers['content-length']);
        const tooLarge = () =>
          finish({
            error: new CloudStackProtocolError(
              `CloudStack ${command} answered HTTP ${status} with a body larger than ${MAX_BODY_BYTES} bytes`,
            ),
          });
        if (declared > MAX_BODY_BYTES) return tooLarge();
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) return tooLarge();
          chunks.push(chunk);
        });
        response.on('end', () =>
          finish({ answer: { status, body: Buffer.concat(chunks).toString('utf8') } }),
        );
        response.on('error', (error) =>
          finish({ error: transportError(`lost the connection: ${describe(error)}`, error) }),
        );
        response.on('close', () => {
          if (!response.complete)
            finish({ error: transportError('closed the connection before the answer was complete') });
        });
      });
      request.on('error', (error) => finish({ error: transportError(`failed: ${describe(error)}`, error) }));
      const timer = setTimeout(
        () => finish({ error: transportError(`did not answer within ${formatDuration(timeoutMs)}`) }),
        timeoutMs,
      );
      request.end();
    });
  }
}

function parseEndpoint(url: string): URL {
  let endpoint: URL;
  try {
    endpoint = new URL(url);
  } catch {
    throw new ConfigError([`CloudStack URL is not a valid URL`]);
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') {
    throw new ConfigError([`CloudStack URL must start with http:// or https://, got ${endpoint.protocol}`]);
  }
  if (endpoint.search !== '' || endpoint.username !== '' || endpoint.password !== '') {
    throw new ConfigError([
      'CloudStack URL must be the API endpoint only (…/client/api), without query or credentials',
    ]);
  }
  return endpoint;
}

function readCaFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError([
      `cannot read the CloudStack CA file ${path}: ${(error as NodeJS.ErrnoException).code}`,
    ]);
  }
}

function describe(error: Error): string {
  return (error as NodeJS.ErrnoException).code ?? error.message;
}

/** Turns an HTTP answer into the `<command>response` object, or the matching typed error. */
function interpretAnswer(
  command: string,
  raw: RawAnswer,
  redact: (text: string) => string,
): Record<string, unknown> {
  const protocolError = (what: string) =>
    new CloudStackProtocolError(
      `CloudStack ${command} answered HTTP ${raw.status} with ${what}: ${JSON.stringify(redact(raw.body.slice(0, BODY_SNIPPET_CHARS)))}`,
    );
  let json: unknown;
  try {
    json = JSON.parse(raw.body);
  } catch {
    throw protocolError('a body that is not JSON');
  }
  const responseKey = `${command.toLowerCase()}response`;
  const inner = isObject(json) ? (json[responseKey] ?? json.errorresponse) : undefined;
  if (!isObject(inner)) throw protocolError(`no "${responseKey}" object`);
  if ('errorcode' in inner || raw.status !== 200) {
    const error = errorBodySchema.safeParse(inner);
    if (!error.success) throw protocolError('an error without errorcode/errortext');
    throw new CloudStackError(command, error.data.errorcode, error.data.cserrorcode, error.data.errortext);
  }
  return inner;
}

function parseShape<T>(command: string, schema: z.ZodType<T>, answer: Record<string, unknown>): T {
  const parsed = schema.safeParse(answer);
  if (parsed.success) return parsed.data;
  // Paths and messages only: values could be anything the server sent.
  const problems = parsed.error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  throw new CloudStackProtocolError(
    `CloudStack ${command} answered an unexpected shape: ${problems.join('; ')}`,
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function toCluster(c: z.infer<typeof clusterSchema>): CloudStackCluster {
  return {
    id: c.id,
    name: c.name,
    hypervisorType: c.hypervisortype,
    managedState: c.managedstate,
    allocationState: c.allocationstate,
    clusterType: c.clustertype,
    podId: c.podid,
    podName: c.podname,
    zoneId: c.zoneid,
    zoneName: c.zonename,
  };
}

function toHost(h: z.infer<typeof hostSchema>): CloudStackHost {
  return {
    id: h.id,
    name: h.name,
    ipAddress: h.ipaddress,
    state: h.state,
    resourceState: h.resourcestate,
    type: h.type,
    clusterId: h.clusterid ?? '',
    clusterName: h.clustername ?? '',
    hypervisor: h.hypervisor ?? '',
  };
}
