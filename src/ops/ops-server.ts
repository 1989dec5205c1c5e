/**
 * A small HTTP server for the operations endpoints where Bolt's HTTP receiver does not listen:
 * in Socket Mode and for ROLE=worker. GET only; anything else is 404 or 405.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OpsRoute } from './http-routes.js';

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Slow or idle clients are cut off: a probe answers in milliseconds. */
const REQUEST_TIMEOUT_MS = 10_000;

export async function startOpsServer(options: {
  port: number;
  /** All interfaces by default (a container's probes come from outside it). */
  host?: string;
  routes: readonly OpsRoute[];
}): Promise<OpsServer> {
  const routes = new Map(options.routes.map((route) => [route.path as string, route]));
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const route = routes.get(path);
    if (!route) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET', 'content-type': 'text/plain; charset=utf-8' });
      response.end('method not allowed\n');
      return;
    }
    route.handler(request, response);
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
