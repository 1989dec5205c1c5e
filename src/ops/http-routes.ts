/**
 * The operations endpoints, as plain handlers: mounted on Bolt's HTTP receiver in HTTP mode, served
 * by a small server of their own in Socket Mode and for ROLE=worker (src/ops/ops-server.ts).
 *   GET /healthz  200 while the process is alive (its event loop answers)
 *   GET /readyz   200 or 503 with every check (Redis, Slack, worker) as JSON
 *   GET /metrics  Prometheus text format; bearer token when METRICS_TOKEN is set
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { type Metrics, renderMetrics } from '../metrics/registry.js';
import type { ReadinessReport } from './readiness.js';

export interface OpsRoute {
  path: '/healthz' | '/readyz' | '/metrics';
  handler(request: IncomingMessage, response: ServerResponse): void;
}

export interface OpsRouteDeps {
  metrics: Metrics;
  readiness(): Promise<ReadinessReport>;
  /** When set, `/metrics` asks for `Authorization: Bearer <token>`. */
  metricsToken?: string;
  logger: Logger;
}

export function opsRoutes(deps: OpsRouteDeps): OpsRoute[] {
  const fail = (response: ServerResponse, what: string, error: unknown) => {
    deps.logger.error({ err: describeError(error) }, `${what} failed`);
    send(response, 500, 'text/plain; charset=utf-8', `${what} failed\n`);
  };
  return [
    {
      path: '/healthz',
      handler: (_request, response) => send(response, 200, 'text/plain; charset=utf-8', 'ok\n'),
    },
    {
      path: '/readyz',
      handler: (_request, response) => {
        deps.readiness().then(
          (report) =>
            send(response, report.ready ? 200 : 503, 'application/json', `${JSON.stringify(report)}\n`),
          (error: unknown) => fail(response, 'readiness check', error),
        );
      },
    },
    {
      path: '/metrics',
      handler: (request, response) => {
        if (deps.metricsToken && !bearerMatches(request.headers.authorization, deps.metricsToken)) {
          response.setHeader('www-authenticate', 'Bearer realm="metrics"');
          send(response, 401, 'text/plain; charset=utf-8', 'a bearer token is required\n');
          return;
        }
        renderMetrics(deps.metrics).then(
          ({ contentType, body }) => send(response, 200, contentType, body),
          (error: unknown) => fail(response, 'rendering metrics', error),
        );
      },
    },
  ];
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  if (response.headersSent) return;
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  response.end(body);
}

/** Compared as digests, in constant time, so neither the token nor its length leaks. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? '';
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(token));
}
