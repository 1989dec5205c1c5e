/**
 * Section 2 of issue 5: whole rolling reboots of a lab cluster through the real CLI, at several
 * `--threads`. Times come from the lab's operation log (what really happened, when) and the
 * engine's JSON events, on one clock; lower bounds come from the lab's own physics: a host's VMs
 * cannot leave faster than its NIC carries their memory, a host cannot reboot faster than its
 * timings say.
 */
import { rmSync } from 'node:fs';
import { startLab } from '../lab/lab.js';
import type { Operation } from '../lab/operation-log.js';
import { GiB, generatePoolSpec } from '../lab/pool-generator.js';
import type { LabTimings } from '../lab/pool-model.js';
import { TIMING_PRESETS, type TimingPreset } from '../lab/timing-presets.js';
import { runCliAgainst, testStateDir } from '../test/support/lab-cli.js';
import { max, median, round, sum } from './stats.js';
import type { Table } from './table.js';

export interface MaintenanceConfig {
  preset: TimingPreset;
  timings: LabTimings;
  hosts: number;
  vms: number;
  load: number;
  seed: number;
  threads: number[];
  pollIntervalMs: number;
  cloudstack: { unmanageDelayMs: number; reconnectDelayMs: number };
}

export interface HostTiming {
  host: string;
  master: boolean;
  vms: number;
  /** What crosses the NIC: every VM's memory plus its overhead, as the lab transfers it. */
  memoryGiB: number;
  evacuationS: number;
  evacuationBoundS: number;
  evacuationRatio: number;
  /** From host.disable to the first migration: re-reading the pool and planning. */
  planningLatencyS: number;
  rebootS: number;
  rebootBoundS: number;
  /** From the host really being back to the engine having enabled it: polling. */
  pollSlackS: number;
  /** From the last migration to host.reboot: checking it is empty, probing SSH, agent start time. */
  emptyToRebootS: number;
}

export interface ThreadRun {
  threads: number;
  exitCode: number;
  invariantsOk: boolean;
  violations: string[];
  maxConcurrentFromOneHost: number;
  totalS: number;
  lowerBoundS: number;
  waits: number;
  allowedS: number;
  ratio: number;
  evacuationRatioMedian: number;
  evacuationRatioMax: number;
  evacuationTotalS: number;
  hosts: HostTiming[];
  breakdown: {
    evacuationS: number;
    rebootS: number;
    pollSlackS: number;
    betweenStepsS: number;
    clusterPrepS: number;
    clusterRestoreS: number;
    unaccountedS: number;
  };
}

export interface MaintenanceResult {
  config: MaintenanceConfig;
  runs: ThreadRun[];
  targets: {
    bestThreads: number;
    bestEvacuationRatio: number;
    evacuationWithin115: boolean;
    clusterWithinAllowance: Record<string, boolean>;
    speedupAt5Threads: number;
  };
}

export function maintenanceConfig(quick: boolean): MaintenanceConfig {
  return quick
    ? {
        preset: 'fast',
        timings: TIMING_PRESETS.fast,
        hosts: 2,
        vms: 4,
        load: 0.6,
        seed: 5,
        threads: [2],
        pollIntervalMs: 50,
        cloudstack: { unmanageDelayMs: 100, reconnectDelayMs: 200 },
      }
    : {
        preset: 'demo',
        timings: TIMING_PRESETS.demo,
        hosts: 4,
        vms: 32,
        load: 0.7,
        seed: 5,
        threads: [1, 2, 5, 10],
        pollIntervalMs: 250,
        cloudstack: { unmanageDelayMs: 1_000, reconnectDelayMs: 2_000 },
      };
}

export async function runMaintenanceTime(
  config: MaintenanceConfig,
  progress: (line: string) => void,
): Promise<{ result: MaintenanceResult; tables: Table[] }> {
  const runs: ThreadRun[] = [];
  for (const threads of config.threads) {
    progress(`maintenance: rolling reboot at --threads ${threads}`);
    runs.push(await runAtThreads(config, threads));
  }
  const best = [...runs].sort((a, b) => a.evacuationRatioMedian - b.evacuationRatioMedian)[0];
  const one = runs.find((r) => r.threads === 1);
  const five = runs.find((r) => r.threads === 5);
  const result: MaintenanceResult = {
    config,
    runs,
    targets: {
      bestThreads: best?.threads ?? 0,
      bestEvacuationRatio: best?.evacuationRatioMedian ?? Number.NaN,
      evacuationWithin115: (best?.evacuationRatioMedian ?? Number.POSITIVE_INFINITY) <= 1.15,
      clusterWithinAllowance: Object.fromEntries(
        runs.map((r) => [String(r.threads), r.totalS <= r.allowedS]),
      ),
      speedupAt5Threads: one && five ? round(one.evacuationTotalS / five.evacuationTotalS, 2) : Number.NaN,
    },
  };
  return { result, tables: tablesOf(result) };
}

interface Clocked {
  op: Operation;
  wall: number;
}

async function runAtThreads(config: MaintenanceConfig, threads: number): Promise<ThreadRun> {
  const lab = await startLab({
    spec: generatePoolSpec({ hosts: config.hosts, vms: config.vms, seed: config.seed, load: config.load }),
    timings: config.timings,
    cloudstackTimings: config.cloudstack,
  });
  const { stateDir } = testStateDir();
  const clocked: Clocked[] = [];
  const unsubscribe = lab.log.subscribe((op) => clocked.push({ op, wall: Date.now() }));
  try {
    const startedAt = Date.now();
    const run = await runCliAgainst(lab, ['CLUSTER-1', '--exec', '--threads', String(threads), '--json'], {
      POLL_INTERVAL_MS: String(config.pollIntervalMs),
      STATE_DIR: stateDir,
      HOST_REBOOT_TIMEOUT_SECONDS: '60',
      MIGRATION_TIMEOUT_SECONDS: '60',
    });
    const endedAt = Date.now();
    const report = lab.checkInvariants();
    const eventAt = (type: string, host: string) =>
      run.events.filter((e) => e.type === type && e.host === host).map((e) => Date.parse(String(e.at)));

    const master = lab.model.masterHost().name;
    const order = run.events.filter((e) => e.type === 'host_started').map((e) => String(e.host));
    const hosts = order.map((name) => {
      const at = (kind: string, filter: (c: Clocked) => boolean = () => true) =>
        clocked.filter((c) => c.op.kind === kind && c.op.host === name && filter(c)).map((c) => c.wall);
      const disabled = at('host.disabled')[0] ?? Number.NaN;
      const rebootRequested = at('host.reboot_requested')[0] ?? Number.NaN;
      const inWindow = (c: Clocked) => c.wall >= disabled && c.wall <= rebootRequested;
      const migrated = clocked.filter(
        (c) => c.op.kind === 'vm.migrated' && c.op.host === name && inWindow(c),
      );
      const firstStart = at('vm.migration_started', inWindow)[0] ?? disabled;
      const lastMigrated = migrated.at(-1)?.wall ?? disabled;
      const hostModel = lab.model.hostByName(name);
      const bytes = sum(migrated.map((c) => lab.model.vmFootprint(lab.model.vmByName(String(c.op.vm)))));
      const bandwidth = hostModel.nicBytesPerSecond / config.timings.bandwidthScale;
      const warmup = name === master ? config.timings.xapiWarmupMs : 0;
      const ready = (at('host.came_up')[0] ?? Number.NaN) + warmup;
      const enabled = eventAt('host_enabled', name)[0] ?? Number.NaN;
      const evacuation = (lastMigrated - disabled) / 1000;
      const bound = bytes / bandwidth;
      return {
        timing: {
          host: name,
          master: name === master,
          vms: migrated.length,
          memoryGiB: round(bytes / GiB, 1),
          evacuationS: round(evacuation, 2),
          evacuationBoundS: round(bound, 2),
          evacuationRatio: round(evacuation / bound, 3),
          planningLatencyS: round((firstStart - disabled) / 1000, 2),
          rebootS: round((ready - rebootRequested) / 1000, 2),
          rebootBoundS:
            (config.timings.rebootDelayMs + config.timings.bootMs + config.timings.xapiStartMs + warmup) /
            1000,
          pollSlackS: round((enabled - ready) / 1000, 2),
          emptyToRebootS: round((rebootRequested - lastMigrated) / 1000, 2),
        } satisfies HostTiming,
        disabled,
        done: eventAt('host_done', name)[0] ?? enabled,
      };
    });

    const timings = hosts.map((h) => h.timing);
    const gaps = hosts.slice(1).map((h, i) => (h.disabled - (hosts[i]?.done ?? h.disabled)) / 1000);
    const totalS = (endedAt - startedAt) / 1000;
    const breakdown = {
      evacuationS: sum(timings.map((t) => t.evacuationS)),
      rebootS: sum(timings.map((t) => t.rebootS)),
      pollSlackS: sum(timings.map((t) => t.pollSlackS)),
      betweenStepsS: sum(timings.map((t) => t.emptyToRebootS)) + sum(gaps),
      clusterPrepS: ((hosts[0]?.disabled ?? startedAt) - startedAt) / 1000,
      clusterRestoreS: (endedAt - (hosts.at(-1)?.done ?? endedAt)) / 1000,
    };
    const accounted = sum(Object.values(breakdown));
    const lowerBoundS = sum(timings.map((t) => t.rebootBoundS + t.evacuationBoundS));
    // Per host: down, back, enabled; per cluster: Unmanaged, Managed, hosts Up.
    const waits = 3 * timings.length + 3;
    const allowedS = 1.1 * lowerBoundS + (waits * config.pollIntervalMs) / 1000;
    const ratios = timings.map((t) => t.evacuationRatio);
    return {
      threads,
      exitCode: run.code,
      invariantsOk: report.ok && report.violations.length === 0,
      violations: report.violations,
      maxConcurrentFromOneHost: maxInFlightFromOneHost(clocked),
      totalS: round(totalS, 2),
      lowerBoundS: round(lowerBoundS, 2),
      waits,
      allowedS: round(allowedS, 2),
      ratio: round(totalS / lowerBoundS, 3),
      evacuationRatioMedian: round(median(ratios), 3),
      evacuationRatioMax: round(max(ratios), 3),
      evacuationTotalS: round(breakdown.evacuationS, 2),
      hosts: timings,
      breakdown: {
        ...Object.fromEntries(Object.entries(breakdown).map(([k, v]) => [k, round(v, 2)])),
        unaccountedS: round(totalS - accounted, 2),
      } as ThreadRun['breakdown'],
    };
  } finally {
    unsubscribe();
    await lab.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/**
 * Migrations in flight from one source at once, from the log: started and not yet ended. (The lab's
 * own `concurrentFromSource` counts transfers on the link only, missing those in their setup phase.)
 */
function maxInFlightFromOneHost(clocked: readonly Clocked[]): number {
  const inFlight = new Map<string, number>();
  let most = 0;
  for (const { op } of clocked) {
    const source = op.host ?? '';
    if (op.kind === 'vm.migration_started') {
      inFlight.set(source, (inFlight.get(source) ?? 0) + 1);
      most = Math.max(most, inFlight.get(source) ?? 0);
    } else if (op.kind === 'vm.migrated' || op.kind === 'vm.migration_failed') {
      inFlight.set(source, (inFlight.get(source) ?? 0) - 1);
    }
  }
  return most;
}

function tablesOf(result: MaintenanceResult): Table[] {
  const { config, runs } = result;
  const setup =
    `Lab: ${config.hosts} hosts, ${config.vms} VMs (load ${config.load}), timing preset "${config.preset}" ` +
    `(migration bandwidth ×${1 / config.timings.bandwidthScale} of a 10 Gbit/s NIC, ${config.timings.migrationOverheadMs} ms ` +
    `fixed cost per migration, reboot ${(config.timings.rebootDelayMs + config.timings.bootMs + config.timings.xapiStartMs) / 1000} s), ` +
    `POLL_INTERVAL_MS=${config.pollIntervalMs}, CloudStack unmanage ${config.cloudstack.unmanageDelayMs} ms / reconnect ${config.cloudstack.reconnectDelayMs} ms.`;
  const one = runs.find((r) => r.threads === 1);
  const evacuation: Table = {
    title: 'Evacuating one host: measured (host.disable → last VM migrated) vs memory ÷ NIC bandwidth',
    headers: [
      'threads',
      'evacuation s (all hosts)',
      'bound s',
      '× bound (median host)',
      '× bound (worst host)',
      'speed-up vs 1 thread',
      'max parallel from a host',
    ],
    rows: runs.map((r) => [
      r.threads,
      r.evacuationTotalS,
      round(sum(r.hosts.map((h) => h.evacuationBoundS)), 2),
      r.evacuationRatioMedian,
      r.evacuationRatioMax,
      one ? round(one.evacuationTotalS / r.evacuationTotalS, 2) : undefined,
      r.maxConcurrentFromOneHost,
    ]),
    notes: [
      setup,
      `Target: within 1.15× of the bound at the best thread count (here ${result.targets.bestThreads}: ${result.targets.bestEvacuationRatio}×, ${result.targets.evacuationWithin115 ? 'met' : 'missed'}).`,
    ],
  };
  const cluster: Table = {
    title: 'Whole cluster: measured vs lower bound (Σ reboot times + Σ evacuation bounds)',
    headers: [
      'threads',
      'exit',
      'invariants',
      'total s',
      'lower bound s',
      '× bound',
      'allowed s',
      'within target',
    ],
    rows: runs.map((r) => [
      r.threads,
      r.exitCode,
      r.invariantsOk ? 'held' : `VIOLATED (${r.violations.length})`,
      r.totalS,
      r.lowerBoundS,
      r.ratio,
      r.allowedS,
      r.totalS <= r.allowedS,
    ]),
    notes: [
      `Allowed = 1.10 × lower bound + POLL_INTERVAL_MS × ${runs[0]?.waits ?? 0} waits (3 per host: down, back, enabled; 3 CloudStack waits: Unmanaged, Managed, hosts Up). Total = CLI start to exit, pre-flight included.`,
    ],
  };
  const where: Table = {
    title: 'Where the time goes (seconds, summed over hosts)',
    headers: [
      'threads',
      'total',
      'evacuations',
      'reboots (physical)',
      'polling slack',
      'between steps',
      'cluster prep',
      'cluster restore',
      'unaccounted',
    ],
    rows: runs.map((r) => [
      r.threads,
      r.totalS,
      r.breakdown.evacuationS,
      r.breakdown.rebootS,
      r.breakdown.pollSlackS,
      r.breakdown.betweenStepsS,
      r.breakdown.clusterPrepS,
      r.breakdown.clusterRestoreS,
      r.breakdown.unaccountedS,
    ]),
    notes: [
      'Reboots: host.reboot to the host really back (XAPI up; on the master, past its HOST_STILL_BOOTING warm-up). Polling slack: from then to the engine having enabled it.',
      'Between steps: last migration → host.reboot (empty check, SSH boot id, agent start time) and host done → next host.disable (re-read pool, blockers, re-plan).',
      'Cluster prep: CLI start → first host.disable (pre-flight, CloudStack Unmanaged, HA and auto_poweron off). Cluster restore: last host done → exit (HA, auto_poweron, Managed, hosts Up).',
    ],
  };
  return [evacuation, cluster, where];
}
