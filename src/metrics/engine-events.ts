/**
 * The engine's events, as they already flow to Slack, turned into counters and histograms.
 */
import type { EngineEvent } from '../engine/events.js';
import type { Metrics } from './registry.js';

export function recordEngineEvent(metrics: Metrics, cluster: string, event: EngineEvent): void {
  switch (event.type) {
    case 'host_done':
      metrics.hostsRebooted.inc({ cluster });
      return;
    case 'host_up':
      metrics.hostRebootSeconds.observe({ cluster }, event.seconds);
      return;
    case 'host_empty':
      metrics.evacuationSeconds.observe({ cluster }, event.seconds);
      return;
    case 'migration_finished':
      metrics.migrations.inc({ cluster, result: 'ok' });
      metrics.migrationSeconds.observe({ cluster }, event.seconds);
      return;
    case 'migration_failed':
      metrics.migrations.inc({ cluster, result: 'failed' });
      return;
    default:
      return;
  }
}
