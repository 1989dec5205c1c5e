/**
 * `/metrics` scraped during and after a real run (Slack request, approval, BullMQ worker, lab over
 * real sockets): hosts rebooted, migrations, durations, queue depth, runs by state, lock
 * contention, Slack errors and retries move as the lab and the Slack server saw things happen.
 * And the run's structured logs: JSON, with run id and cluster on every line, the host on every
 * host step, and no secret anywhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { acquireClusterLock } from '../../src/queue/cluster-lock.js';
import {
  BOT_TOKEN,
  type MetricSamples,
  type OpsHarness,
  SIGNING_SECRET,
  startOpsHarness,
} from '../support/ops-service.js';

const CLUSTER = 'CLUSTER-1';
const logLines: string[] = [];
let h: OpsHarness;

beforeAll(async () => {
  const logger = createLogger({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
  h = await startOpsHarness({ logger });
}, 60_000);

afterAll(async () => {
  await h?.stop();
});

describe('/metrics during a lab run', () => {
  let runId: string;

  it('hosts rebooted, migrations, durations, queue depth, runs by state, lock and Slack figures move', async () => {
    const before = await h.scrape();
    expect(before.value('crb_redis_up')).toBe(1);
    expect(before.value('crb_hosts_rebooted_total')).toBe(0);
    expect(before.value('crb_runs', { state: 'done' })).toBe(0);
    expect(before.value('crb_queue_jobs', { state: 'completed' })).toBe(0);
    expect(before.has('process_cpu_user_seconds_total')).toBe(true);

    // Someone else holds the cluster's lock when the run is approved: the worker waits for it.
    const foreign = await acquireClusterLock(h.redis, h.redisServer.prefix, CLUSTER, 'someone-else', 10_000);
    expect(foreign).toBeDefined();
    // And Slack fails one update of the run's messages with a 503: the writer retries it.
    h.slack.fail('chat.update', { status: 503 }, 1);

    ({ runId } = await h.requestAndApprove());
    const contended = await scrapeUntil(
      (m) => m.value('crb_cluster_lock_busy_total', { cluster: CLUSTER }) > 0,
    );
    expect(contended.value('crb_queue_jobs', { state: 'active' })).toBe(1);
    expect(contended.value('crb_runs', { state: 'approved' })).toBe(1);
    expect(h.lab.log.ofKind('host.disabled')).toEqual([]);
    await foreign?.release();

    const during = await scrapeUntil((m) => m.has('crb_run_seconds_since_progress', { run_id: runId }));
    expect(during.value('crb_runs', { state: 'running' })).toBe(1);
    expect(during.value('crb_queue_jobs', { state: 'active' })).toBe(1);
    expect(during.value('crb_run_seconds_since_progress', { run_id: runId, cluster: CLUSTER })).toBeLessThan(
      30,
    );

    const finished = await h.waitForRun(runId, ['done', 'failed', 'aborted', 'needs_attention'], 60_000);
    expect(finished.state).toBe('done');
    await h.slack.waitFor((s) => s.calls('chat.update').some((c) => c.answer === 'HTTP 503'), 10_000);
    // The worker is done with the run once its last Slack messages are queued.
    const after = await scrapeUntil(
      (m) => m.value('crb_slack_api_retries_total') > 0 && m.value('crb_worker_runs_ended_total') > 0,
    );

    const report = h.lab.checkInvariants({ expectRestored: true });
    expect(report.violations).toEqual([]);
    expect(after.value('crb_hosts_rebooted_total', { cluster: CLUSTER })).toBe(3);
    expect(after.value('crb_host_reboot_duration_seconds_count', { cluster: CLUSTER })).toBe(3);
    expect(after.value('crb_host_reboot_duration_seconds_sum', { cluster: CLUSTER })).toBeGreaterThan(0);
    expect(after.value('crb_host_evacuation_duration_seconds_count', { cluster: CLUSTER })).toBe(3);
    const migrated = h.lab.log.ofKind('vm.migrated').length;
    expect(migrated).toBeGreaterThan(0);
    expect(after.value('crb_migrations_total', { cluster: CLUSTER, result: 'ok' })).toBe(migrated);
    expect(after.value('crb_migrations_total', { cluster: CLUSTER, result: 'failed' })).toBe(
      h.lab.log.ofKind('vm.migration_failed').length,
    );
    expect(after.value('crb_migration_duration_seconds_count', { cluster: CLUSTER })).toBe(migrated);

    expect(after.has('crb_run_seconds_since_progress', { run_id: runId })).toBe(false);
    expect(after.value('crb_worker_runs_started_total', { cluster: CLUSTER })).toBe(1);
    expect(after.value('crb_worker_runs_ended_total', { cluster: CLUSTER, status: 'done' })).toBe(1);
    expect(after.value('crb_runs', { state: 'done' })).toBe(1);
    expect(after.value('crb_runs', { state: 'running' })).toBe(0);
    expect(after.value('crb_queue_jobs', { state: 'active' })).toBe(0);
    expect(after.value('crb_queue_jobs', { state: 'completed' })).toBe(1);

    // What the Slack server answered is what was counted.
    const failedUpdates = h.slack.calls('chat.update').filter((c) => c.answer === 'HTTP 503').length;
    expect(failedUpdates).toBe(1);
    expect(after.value('crb_slack_api_errors_total', { error: 'HTTP 503' })).toBe(1);
    expect(after.value('crb_slack_api_retries_total')).toBe(1);
    expect(after.value('crb_slack_api_calls_total', { result: 'ok' })).toBeGreaterThan(3);
    expect(after.value('crb_slack_messages_dropped_total')).toBe(0);
    expect(after.value('crb_stall_alarms_total')).toBe(0);
  });

  it('logs the run as JSON lines with run id, cluster and host, and no secret', () => {
    const entries = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const ofRun = entries.filter((entry) => entry.runId === runId);
    expect(ofRun.length).toBeGreaterThan(20);
    for (const entry of ofRun) expect(entry.cluster).toBe(CLUSTER);

    const hostSteps = ofRun.filter((entry) => /^(host_|migration_)/.test(String(entry.event ?? '')));
    expect(hostSteps.length).toBeGreaterThan(3 * 6);
    for (const entry of hostSteps) expect(entry.host).toMatch(/^host[123]$/);
    const done = ofRun.filter((entry) => entry.event === 'host_done').map((entry) => entry.host);
    expect(done.sort()).toEqual(['host1', 'host2', 'host3']);
    // The engine's own clients log through the run's logger too.
    expect(ofRun.some((entry) => /XAPI/.test(String(entry.msg)))).toBe(true);

    const everything = logLines.join('\n');
    for (const secret of [
      SIGNING_SECRET,
      BOT_TOKEN,
      h.lab.info.xapi.password,
      h.lab.info.cloudstack.secretKey,
      h.lab.info.cloudstack.apiKey,
    ]) {
      expect(everything).not.toContain(secret);
    }
  });
});

async function scrapeUntil(
  predicate: (m: MetricSamples) => boolean,
  timeoutMs = 20_000,
): Promise<MetricSamples> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const metrics = await h.scrape();
    if (predicate(metrics)) return metrics;
    if (Date.now() > deadline) throw new Error(`metrics condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
