/**
 * The soak (issue 6, part 4): consecutive rolling reboots of several lab clusters through the real
 * `reboot-cluster` CLI in-process, each with a fault drawn at random (seeded) from the fault
 * matrix. A run that halts is put right as an operator would (fault cleared, then the same command
 * resumes it; or, for a host that is gone for good, Finish: the cluster is replaced), and every run
 * is judged by the lab's operation log and invariant checker, never by what the bot says.
 *
 *   npx tsx bench/soak.ts [--runs 50] [--clusters 3] [--seed N] [--via cli|worker] [--faults a,b]
 *
 * `--via worker` runs the same faults through the queue worker instead (a private Redis, the
 * BullMQ worker, the fenced lock and Redis checkpoints; Abort is the abort flag, Resume and Finish
 * do what the Slack buttons do, and the hard stop becomes a worker restart mid-run).
 *
 * Prints the seed, one line per run, a table of outcomes per fault, and the invariant violations
 * (exit 1 if there is any, or any run ended other than its fault allows).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { Lab } from '../lab/lab.js';
import { seededRandom } from '../lab/pool-generator.js';
import { unreportedChanges } from '../test/support/fault-checks.js';
import { startTestLab } from '../test/support/lab-cli.js';
import { cliDriver, type Driver, type Ending, type SoakCluster, workerDriver } from './soak-drivers.js';
import { armFault, FAULT_KINDS, type FaultKind, pick, type Random, type Status } from './soak-faults.js';
import { renderTable } from './table.js';

export { FAULT_KINDS, type FaultKind } from './soak-faults.js';

export type SoakVia = 'cli' | 'worker';

export interface SoakOptions {
  runs: number;
  clusters: number;
  seed: number;
  /** Through the CLI in-process (default) or through the queue worker. */
  via?: SoakVia;
  /** Only these faults are drawn (all by default). */
  faults?: readonly FaultKind[];
  /** One line per finished run. */
  log?: (line: string) => void;
}

export interface SoakRun {
  index: number;
  cluster: string;
  fault: FaultKind;
  target: string;
  /** Each attempt's ending, then `finished by hand` if the cluster had to be replaced. */
  path: string[];
  /** Why each attempt that did not end done ended as it did, as the team was told. */
  reasons: string[];
  final: Status;
  expected: readonly Status[];
  violations: string[];
  seconds: number;
}

export interface SoakReport {
  seed: number;
  via: SoakVia;
  clusters: number;
  runs: SoakRun[];
  seconds: number;
}

/** A halted run is resumed at most this many times before the soak counts it as stuck. */
const MAX_RESUMES = 3;

/** A cluster of the soak: replaced by a fresh lab (and state directory) when a human had to finish its run. */
interface Cluster extends SoakCluster {
  lab: Lab;
  stateDir: string;
  random: Random;
  /** Violations already reported for this lab: the checker reports the whole log each time. */
  seen: Set<string>;
  /** How many labs this cluster has had (a cluster whose host is gone for good gets a new one). */
  generation: number;
}

/** Reboots per host in the log from `fromSeq` on. */
function rebootsSince(lab: Lab, fromSeq: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const op of lab.log.entries()) {
    if (op.seq > fromSeq && op.kind === 'host.went_down' && op.host)
      counts.set(op.host, (counts.get(op.host) ?? 0) + 1);
  }
  return counts;
}

async function newLab(name: string, random: Random, generation: number): Promise<Lab> {
  const hosts = 2 + Math.floor(random() * 3);
  return startTestLab({
    hosts,
    vms: hosts * 2 + Math.floor(random() * (hosts + 1)),
    seed: Math.floor(random() * 2 ** 31) + generation,
    clusterName: name,
    haEnabled: random() < 0.7,
    autoPoweron: random() < 0.5,
  });
}

async function soakRun(driver: Driver, cluster: Cluster, index: number, kind: FaultKind): Promise<SoakRun> {
  const startedAt = performance.now();
  const { lab } = cluster;
  const fromSeq = lab.log.entries().length;
  const fault = armFault(kind, lab, cluster.random, index);
  const violations: string[] = [];
  const path: string[] = [];
  const reasons: string[] = [];
  const judgeExit = (ending: Ending) => {
    if (ending.exitCode !== undefined && ending.exitCode !== ending.expectedExitCode)
      violations.push(`${ending.status} exited ${ending.exitCode}, not ${ending.expectedExitCode}`);
  };
  const record = (ending: Ending) => {
    for (let i = 0; i < (ending.handovers ?? 0); i++) path.push('suspended');
    path.push(ending.status);
    if (ending.reason) reasons.push(`${ending.status}: ${ending.reason}`);
  };

  let attempt = await driver.start(cluster, fault.env ?? {});
  fault.started?.(attempt);
  let ending = await attempt.done;
  record(ending);
  let retired = false;
  for (let resumes = 0; ending.status === 'needs_attention' || ending.status === 'stopped'; resumes++) {
    const unsaid = unreportedChanges(lab, ending.leftChanged);
    if (unsaid.length > 0) violations.push(`left changed without saying so: ${unsaid.join(', ')}`);
    judgeExit(ending);
    const next =
      resumes < MAX_RESUMES ? await (fault.repair?.() ?? Promise.resolve('retire' as const)) : 'retire';
    if (next === 'retire') {
      retired = true;
      await driver.finishByHand(cluster);
      path.push('finished by hand');
      break;
    }
    attempt = await driver.resume(cluster);
    ending = await attempt.done;
    record(ending);
  }
  await fault.cleanup?.();

  if (!retired) judgeExit(ending);
  const report = lab.checkInvariants({ expectRestored: !retired });
  for (const violation of report.violations) {
    if (cluster.seen.has(violation)) continue;
    cluster.seen.add(violation);
    violations.push(violation);
  }
  const reboots = rebootsSince(lab, fromSeq);
  for (const [host, count] of reboots)
    if (count > 1) violations.push(`I7: ${host} rebooted ${count} times in one run`);
  if (ending.status === 'done') {
    const skipped = lab.model.hosts.filter((h) => !reboots.has(h.name)).map((h) => h.name);
    if (skipped.length > 0) violations.push(`I7: done without rebooting ${skipped.join(', ')}`);
  }

  if (retired || fault.retireAfter) await replaceLab(cluster);
  return {
    index,
    cluster: cluster.name,
    fault: kind,
    target: fault.target,
    path,
    reasons,
    final: ending.status,
    expected: fault.expected,
    violations,
    seconds: (performance.now() - startedAt) / 1000,
  };
}

/** Finish: a human mends the cluster; the soak goes on with a fresh lab under the same name. */
async function replaceLab(cluster: Cluster): Promise<void> {
  await cluster.lab.stop();
  cluster.generation += 1;
  cluster.lab = await newLab(cluster.name, cluster.random, cluster.generation);
  cluster.stateDir = mkdtempSync(join(tmpdir(), 'crb-soak-'));
  cluster.seen = new Set();
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const startedAt = performance.now();
  const kinds = options.faults ?? FAULT_KINDS;
  const via = options.via ?? 'cli';
  const clusters: Cluster[] = [];
  let driver: Driver | undefined;
  try {
    for (let i = 0; i < options.clusters; i++) {
      const random = seededRandom(options.seed + i * 7919);
      const name = `CLUSTER-${i + 1}`;
      clusters.push({
        name,
        lab: await newLab(name, random, 0),
        stateDir: mkdtempSync(join(tmpdir(), 'crb-soak-')),
        random,
        seen: new Set(),
        generation: 0,
      });
    }
    const running = via === 'cli' ? cliDriver() : await workerDriver(clusters);
    driver = running;
    // Runs are dealt to clusters in turn; each cluster's runs are consecutive, the clusters run side by side.
    const runs: SoakRun[] = [];
    await Promise.all(
      clusters.map(async (cluster, c) => {
        for (let index = c + 1; index <= options.runs; index += clusters.length) {
          const run = await soakRun(running, cluster, index, pick(cluster.random, kinds));
          runs.push(run);
          options.log?.(describeRun(run));
        }
      }),
    );
    runs.sort((a, b) => a.index - b.index);
    return {
      seed: options.seed,
      via,
      clusters: options.clusters,
      runs,
      seconds: (performance.now() - startedAt) / 1000,
    };
  } finally {
    await driver?.close();
    await Promise.all(clusters.map((cluster) => cluster.lab.stop()));
  }
}

export function isUnexpected(run: SoakRun): boolean {
  return (
    !run.expected.includes(run.final) &&
    !(run.path.at(-1) === 'finished by hand' && run.expected.includes('needs_attention'))
  );
}

function describeRun(run: SoakRun): string {
  const verdict =
    run.violations.length > 0
      ? `VIOLATIONS: ${run.violations.join('; ')}`
      : isUnexpected(run)
        ? `UNEXPECTED (allowed: ${run.expected.join(', ')}; ${run.reasons.join('; ')})`
        : 'ok';
  return `#${String(run.index).padStart(3, '0')} ${run.cluster} ${run.fault} (${run.target}): ${run.path.join(' -> ')}  ${run.seconds.toFixed(1)} s  ${verdict}`;
}

export function renderSoakReport(report: SoakReport): string {
  const rows = FAULT_KINDS.map((kind) => {
    const runs = report.runs.filter((r) => r.fault === kind);
    const endings = new Map<string, number>();
    for (const run of runs) endings.set(run.path.join(' -> '), (endings.get(run.path.join(' -> ')) ?? 0) + 1);
    return [
      kind,
      runs.length,
      [...endings].map(([path, count]) => `${count}x ${path}`).join('; ') || undefined,
      runs.filter(isUnexpected).length,
      runs.reduce((total, run) => total + run.violations.length, 0),
    ];
  }).filter((row) => (row[1] as number) > 0);
  const finals = new Map<string, number>();
  for (const run of report.runs) {
    const key = run.path.at(-1) === 'finished by hand' ? 'needs_attention, finished by hand' : run.final;
    finals.set(key, (finals.get(key) ?? 0) + 1);
  }
  const violations = report.runs.flatMap((run) =>
    run.violations.map((v) => `#${run.index} ${run.fault}: ${v}`),
  );
  const unexpected = report.runs.filter(isUnexpected).length;
  return [
    renderTable({
      title: `Soak through the ${report.via === 'cli' ? 'CLI' : 'queue worker'}: ${report.runs.length} runs over ${report.clusters} clusters, seed ${report.seed}`,
      headers: ['fault', 'runs', 'what happened (each attempt, in order)', 'unexpected', 'violations'],
      rows,
    }),
    `Runs: ${report.runs.length} (${report.runs.reduce((n, r) => n + r.path.filter((p) => p !== 'finished by hand').length, 0)} attempts) in ${report.seconds.toFixed(0)} s`,
    `Outcomes: ${[...finals].map(([kind, count]) => `${kind} ${count}`).join(', ')}`,
    `Unexpected outcomes: ${unexpected}`,
    `Invariant violations: ${violations.length}`,
    ...violations.map((v) => `  - ${v}`),
  ].join('\n');
}

function parseArgs(argv: string[]): {
  runs: number;
  clusters: number;
  seed: number;
  via: SoakVia;
  faults?: FaultKind[];
} {
  const options = { runs: 50, clusters: 3, seed: Math.floor(Math.random() * 2 ** 31), via: 'cli' as SoakVia };
  const usage =
    'usage: tsx bench/soak.ts [--runs N] [--clusters M] [--seed S] [--via cli|worker] [--faults a,b]';
  let faults: FaultKind[] | undefined;
  for (let i = 0; i < argv.length; i += 2) {
    const [name, text] = [argv[i], argv[i + 1] ?? ''];
    if (name === '--via' && (text === 'cli' || text === 'worker')) {
      options.via = text;
      continue;
    }
    if (name === '--faults') {
      const kinds = text.split(',');
      const unknown = kinds.filter((kind) => !(FAULT_KINDS as readonly string[]).includes(kind));
      if (unknown.length > 0)
        throw new Error(`unknown faults: ${unknown.join(', ')}; known: ${FAULT_KINDS.join(', ')}`);
      faults = kinds as FaultKind[];
      continue;
    }
    const value = Number(text);
    if (!['--runs', '--clusters', '--seed'].includes(name ?? '') || !Number.isInteger(value) || value < 0)
      throw new Error(`${usage} (bad: ${name} ${text})`);
    options[(name as string).slice(2) as 'runs' | 'clusters' | 'seed'] = value;
  }
  if (options.runs < 1 || options.clusters < 1) throw new Error('--runs and --clusters must be at least 1');
  return { ...options, faults };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const options = parseArgs(process.argv.slice(2));
  console.log(
    `soak: seed ${options.seed}, ${options.runs} runs over ${options.clusters} clusters, through the ${options.via}`,
  );
  const report = await runSoak({ ...options, log: (line) => console.log(line) });
  console.log(`\n${renderSoakReport(report)}`);
  const bad = report.runs.some((run) => run.violations.length > 0 || isUnexpected(run));
  process.exit(bad ? 1 : 0);
}
