/**
 * The Prometheus metrics of one process, in a registry of its own (not prom-client's global one),
 * so that several services in one process, as in tests, never share or clash. Everything is
 * named `crb_…`; the Node.js process metrics come with their standard names.
 *
 * Labels are bounded: clusters, run states, results and Slack error codes. Run ids appear only on
 * the per-active-run gauge, whose series disappear when the run ends.
 */
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** Seconds: minutes in production, well under a second in the lab. */
const HOST_REBOOT_BUCKETS = [0.5, 1, 5, 15, 30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 3600];
const EVACUATION_BUCKETS = [0.5, 1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
const MIGRATION_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800];

export interface Metrics {
  readonly registry: Registry;
  readonly hostsRebooted: Counter<'cluster'>;
  readonly hostRebootSeconds: Histogram<'cluster'>;
  readonly evacuationSeconds: Histogram<'cluster'>;
  readonly migrations: Counter<'cluster' | 'result'>;
  readonly migrationSeconds: Histogram<'cluster'>;
  readonly runsStarted: Counter<'cluster'>;
  readonly runsEnded: Counter<'cluster' | 'status'>;
  readonly lockBusy: Counter<'cluster'>;
  readonly stallAlarms: Counter<'cluster'>;
  readonly slackCalls: Counter<'call' | 'result'>;
  readonly slackErrors: Counter<'error'>;
  readonly slackRetries: Counter;
  readonly slackDropped: Counter;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    hostsRebooted: new Counter({
      name: 'crb_hosts_rebooted_total',
      help: 'Hosts rebooted and enabled again by this process',
      labelNames: ['cluster'],
      registers,
    }),
    hostRebootSeconds: new Histogram({
      name: 'crb_host_reboot_duration_seconds',
      help: 'From host.reboot until the host is back (SSH on a new boot, XAPI restarted, live)',
      labelNames: ['cluster'],
      buckets: HOST_REBOOT_BUCKETS,
      registers,
    }),
    evacuationSeconds: new Histogram({
      name: 'crb_host_evacuation_duration_seconds',
      help: 'Emptying one host: its live migrations until only the control domain is left',
      labelNames: ['cluster'],
      buckets: EVACUATION_BUCKETS,
      registers,
    }),
    migrations: new Counter({
      name: 'crb_migrations_total',
      help: 'Live migration attempts by result (ok, failed); a failed attempt may be retried',
      labelNames: ['cluster', 'result'],
      registers,
    }),
    migrationSeconds: new Histogram({
      name: 'crb_migration_duration_seconds',
      help: 'One successful live migration',
      labelNames: ['cluster'],
      buckets: MIGRATION_BUCKETS,
      registers,
    }),
    runsStarted: new Counter({
      name: 'crb_worker_runs_started_total',
      help: 'Runs this worker started or resumed',
      labelNames: ['cluster'],
      registers,
    }),
    runsEnded: new Counter({
      name: 'crb_worker_runs_ended_total',
      help: 'Runs this worker stopped running, by how (done, failed, aborted, needs_attention, suspended, …)',
      labelNames: ['cluster', 'status'],
      registers,
    }),
    lockBusy: new Counter({
      name: 'crb_cluster_lock_busy_total',
      help: "Attempts to take a cluster's lock that found it held by someone else",
      labelNames: ['cluster'],
      registers,
    }),
    stallAlarms: new Counter({
      name: 'crb_stall_alarms_total',
      help: 'Stall alarms posted: a run without progress for longer than STALL_ALARM_SECONDS',
      labelNames: ['cluster'],
      registers,
    }),
    slackCalls: new Counter({
      name: 'crb_slack_api_calls_total',
      help: 'Slack Web API calls of the thread writer by call (post, update) and result (ok, error)',
      labelNames: ['call', 'result'],
      registers,
    }),
    slackErrors: new Counter({
      name: 'crb_slack_api_errors_total',
      help: "Failed Slack Web API calls by Slack's error (HTTP status, platform error or request_error)",
      labelNames: ['error'],
      registers,
    }),
    slackRetries: new Counter({
      name: 'crb_slack_api_retries_total',
      help: 'Slack Web API calls tried again after a retryable failure',
      registers,
    }),
    slackDropped: new Counter({
      name: 'crb_slack_messages_dropped_total',
      help: 'Slack posts or updates given up on (not retryable, or retried for SLACK_RETRY_SECONDS)',
      registers,
    }),
  };
}

/** The text exposition format, for `/metrics`. */
export async function renderMetrics(metrics: Metrics): Promise<{ contentType: string; body: string }> {
  return { contentType: metrics.registry.contentType, body: await metrics.registry.metrics() };
}
