/**
 * Seconds since the last progress of each run this worker is running: what tells from outside that
 * a reboot is stuck. Series exist only while their run is active here.
 */
import { Gauge } from 'prom-client';
import type { ActiveRuns } from '../ops/active-runs.js';
import type { Metrics } from './registry.js';

export function registerProgressGauge(metrics: Metrics, activeRuns: ActiveRuns): void {
  new Gauge({
    name: 'crb_run_seconds_since_progress',
    help: 'Seconds since the last engine event of each active run on this worker (0 while waiting for Continue)',
    labelNames: ['run_id', 'cluster'],
    registers: [metrics.registry],
    collect() {
      this.reset();
      for (const active of activeRuns.list()) {
        this.set(
          { run_id: active.run.runId, cluster: active.run.cluster },
          activeRuns.stalledMs(active) / 1000,
        );
      }
    },
  });
}
