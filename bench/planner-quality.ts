/**
 * Section 1 of issue 5: every planner on the same generated pools. Each plan is judged by the
 * engine's own `replayPlan` (and Xen Orchestra's migrate-back by the same memory rules), so a
 * planner is credited only with plans that really fit; migrations are compared with the optimum
 * (every VM once, the first host's twice).
 */
import { performance } from 'node:perf_hooks';
import { GiB } from '../lab/pool-generator.js';
import { countOptimalMigrations, type Migration, replayPlan } from '../src/engine/planner.js';
import { guestCapacity, type PoolSnapshot, rollingOrder } from '../src/engine/snapshot.js';
import { PLANNERS, type Planner } from './alternatives/index.js';
import { type BenchPool, benchPools, FULL_GRID, provablyInfeasible, QUICK_GRID } from './pools.js';
import { max, mean, median, round, sum } from './stats.js';
import type { Cell, Table } from './table.js';

export interface PlannerOutcome {
  pool: string;
  planner: string;
  status: 'planned' | 'refused' | 'invalid';
  optimal: number;
  migrations?: number;
  /** Xen Orchestra: the migrate-back moves, included in `migrations`. */
  returnMigrations?: number;
  notReturned?: number;
  memoryMovedGiB?: number;
  planningMs: number;
  detail?: string;
}

export interface PoolSummary {
  id: string;
  hosts: number;
  vms: number;
  nominalLoad: number;
  actualLoad: number;
  optimal: number;
  provablyInfeasible: boolean;
}

export interface PlannerRow {
  planner: string;
  name: string;
  pools: number;
  planned: number;
  refused: number;
  invalid: number;
  atOptimum: number;
  /** Over the pools every planner planned, so the columns compare like with like. */
  commonPools: number;
  commonMigrations: number;
  commonOptimal: number;
  ratioMean: number;
  ratioMax: number;
  memoryMovedGiB: number;
  planningMs32Hosts: number;
}

export interface PlannerQualityResult {
  grid: typeof FULL_GRID;
  pools: PoolSummary[];
  outcomes: PlannerOutcome[];
  planners: PlannerRow[];
  targets: {
    oursAboveOptimum: string[];
    alternativeFewerThanOurs: string[];
    oursRefusedButAnotherFits: string[];
    refusedByAll: number;
    refusedByAllProvablyInfeasible: number;
  };
}

export function runPlannerQuality(options: { quick: boolean }): {
  result: PlannerQualityResult;
  tables: Table[];
} {
  const grid = options.quick ? QUICK_GRID : FULL_GRID;
  const pools = benchPools(grid);
  const repeats32 = options.quick ? 1 : 5;
  const outcomes: PlannerOutcome[] = [];
  for (const pool of pools) {
    for (const planner of PLANNERS) {
      outcomes.push(judge(pool, planner, pool.spec.hosts === 32 ? repeats32 : 1));
    }
  }
  const summaries = pools.map(summarize);
  const result: PlannerQualityResult = {
    grid,
    pools: summaries,
    outcomes,
    planners: PLANNERS.map((planner) => plannerRow(planner, pools, outcomes)),
    targets: targets(summaries, outcomes),
  };
  return { result, tables: tablesOf(result) };
}

function judge(pool: BenchPool, planner: Planner, repeats: number): PlannerOutcome {
  const optimal = optimumOf(pool.snapshot);
  const times: number[] = [];
  let result = planner.plan(pool.snapshot, { seed: pool.spec.seed });
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    result = planner.plan(pool.snapshot, { seed: pool.spec.seed });
    times.push(performance.now() - started);
  }
  const base = { pool: pool.id, planner: planner.key, optimal, planningMs: round(median(times), 3) };
  if (!result.ok) return { ...base, status: 'refused', detail: `${result.hostName}: ${result.message}` };

  const replay = replayPlan(pool.snapshot, result.plan);
  const returnMoves = result.returnMoves ?? [];
  const violations = [
    ...replay.violations.map((v) => v.message),
    ...checkReturnMoves(pool.snapshot, replay.residency, returnMoves),
  ];
  const migrations = result.plan.totalMigrations + returnMoves.length;
  const memory = result.plan.memoryMoved + sum(returnMoves.map((m) => m.memory));
  return {
    ...base,
    status: violations.length === 0 ? 'planned' : 'invalid',
    migrations,
    ...(result.returnMoves
      ? { returnMigrations: returnMoves.length, notReturned: result.notReturned ?? 0 }
      : {}),
    memoryMovedGiB: round(memory / GiB, 1),
    ...(violations.length > 0
      ? { detail: `${violations.length} violation(s): ${violations.slice(0, 3).join('; ')}` }
      : {}),
  };
}

function optimumOf(snapshot: PoolSnapshot): number {
  return countOptimalMigrations(snapshot, rollingOrder(snapshot));
}

/** The migrate-back moves, replayed from where the evacuation left every VM: no host overcommitted. */
export function checkReturnMoves(
  snapshot: PoolSnapshot,
  residency: Record<string, string>,
  moves: readonly Migration[],
): string[] {
  const problems: string[] = [];
  const where = new Map(Object.entries(residency));
  const used = new Map<string, number>(snapshot.hosts.map((h) => [h.id, 0]));
  const start = new Map<string, number>(snapshot.hosts.map((h) => [h.id, 0]));
  for (const vm of snapshot.vms) start.set(vm.residentOn, (start.get(vm.residentOn) ?? 0) + vm.memory);
  const capacity = new Map(snapshot.hosts.map((h) => [h.id, guestCapacity(h, start.get(h.id) ?? 0)]));
  for (const vm of snapshot.vms) {
    const at = where.get(vm.id) ?? vm.residentOn;
    used.set(at, (used.get(at) ?? 0) + vm.memory);
  }
  for (const move of moves) {
    if (where.get(move.vmId) !== move.from) problems.push(`${move.vmName} is not on ${move.from}`);
    used.set(move.from, (used.get(move.from) ?? 0) - move.memory);
    used.set(move.to, (used.get(move.to) ?? 0) + move.memory);
    where.set(move.vmId, move.to);
    if ((used.get(move.to) ?? 0) > (capacity.get(move.to) ?? 0))
      problems.push(`${move.vmName} overcommits ${move.to} on its way back`);
  }
  return problems;
}

function summarize(pool: BenchPool): PoolSummary {
  return {
    id: pool.id,
    hosts: pool.spec.hosts,
    vms: pool.vms,
    nominalLoad: pool.spec.load,
    actualLoad: round(pool.actualLoad, 3),
    optimal: optimumOf(pool.snapshot),
    provablyInfeasible: provablyInfeasible(pool.snapshot),
  };
}

/** Pools on which every planner produced a valid plan. */
function commonPools(outcomes: readonly PlannerOutcome[]): Set<string> {
  const planned = new Map<string, number>();
  for (const o of outcomes) if (o.status === 'planned') planned.set(o.pool, (planned.get(o.pool) ?? 0) + 1);
  return new Set([...planned].filter(([, n]) => n === PLANNERS.length).map(([pool]) => pool));
}

function plannerRow(planner: Planner, pools: BenchPool[], outcomes: PlannerOutcome[]): PlannerRow {
  const mine = outcomes.filter((o) => o.planner === planner.key);
  const planned = mine.filter((o) => o.status === 'planned');
  const common = commonPools(outcomes);
  const onCommon = planned.filter((o) => common.has(o.pool));
  const ratios = onCommon.map((o) => (o.migrations ?? 0) / o.optimal);
  const big = new Set(pools.filter((p) => p.spec.hosts === 32).map((p) => p.id));
  return {
    planner: planner.key,
    name: planner.name,
    pools: mine.length,
    planned: planned.length,
    refused: mine.filter((o) => o.status === 'refused').length,
    invalid: mine.filter((o) => o.status === 'invalid').length,
    atOptimum: planned.filter((o) => o.migrations === o.optimal).length,
    commonPools: onCommon.length,
    commonMigrations: sum(onCommon.map((o) => o.migrations ?? 0)),
    commonOptimal: sum(onCommon.map((o) => o.optimal)),
    ratioMean: round(mean(ratios), 3),
    ratioMax: round(max(ratios), 3),
    memoryMovedGiB: round(sum(onCommon.map((o) => o.memoryMovedGiB ?? 0)), 0),
    planningMs32Hosts: round(median(mine.filter((o) => big.has(o.pool)).map((o) => o.planningMs)), 2),
  };
}

function targets(pools: PoolSummary[], outcomes: PlannerOutcome[]): PlannerQualityResult['targets'] {
  const byPool = new Map<string, PlannerOutcome[]>();
  for (const o of outcomes) byPool.set(o.pool, [...(byPool.get(o.pool) ?? []), o]);
  const oursAboveOptimum: string[] = [];
  const alternativeFewerThanOurs: string[] = [];
  const oursRefusedButAnotherFits: string[] = [];
  let refusedByAll = 0;
  let refusedByAllProvablyInfeasible = 0;
  for (const pool of pools) {
    const all = byPool.get(pool.id) ?? [];
    const ours = all.find((o) => o.planner === 'ours');
    const others = all.filter((o) => o.planner !== 'ours' && o.status === 'planned');
    if (ours?.status === 'planned') {
      if ((ours.migrations ?? 0) > ours.optimal) oursAboveOptimum.push(pool.id);
      const fewer = others.filter((o) => (o.migrations ?? 0) < (ours.migrations ?? 0));
      if (fewer.length > 0)
        alternativeFewerThanOurs.push(`${pool.id} (${fewer.map((o) => o.planner).join(', ')})`);
    } else if (others.length > 0) {
      oursRefusedButAnotherFits.push(`${pool.id} (${others.map((o) => o.planner).join(', ')})`);
    }
    if (all.every((o) => o.status !== 'planned')) {
      refusedByAll++;
      if (pool.provablyInfeasible) refusedByAllProvablyInfeasible++;
    }
  }
  return {
    oursAboveOptimum,
    alternativeFewerThanOurs,
    oursRefusedButAnotherFits,
    refusedByAll,
    refusedByAllProvablyInfeasible,
  };
}

function tablesOf(result: PlannerQualityResult): Table[] {
  const { planners, pools, outcomes, targets: t } = result;
  const overall: Table = {
    title: `Planner quality on ${pools.length} generated pools (${result.grid.hosts.join('/')} hosts)`,
    headers: [
      'planner',
      'planned',
      'refused',
      'invalid',
      'at optimum',
      'migrations*',
      '× optimum* (mean)',
      '× optimum* (max)',
      'memory moved* GiB',
      'plan time 32 hosts ms',
    ],
    rows: planners.map((p) => [
      p.name,
      p.planned,
      p.refused,
      p.invalid,
      `${p.atOptimum}/${p.planned}`,
      p.commonMigrations,
      p.ratioMean,
      p.ratioMax,
      p.memoryMovedGiB,
      p.planningMs32Hosts,
    ]),
    notes: [
      `* over the ${planners[0]?.commonPools ?? 0} pools every planner planned (optimum there: ${planners[0]?.commonOptimal ?? 0} migrations = every VM once + the first host's VMs again).`,
      'Refused: no plan (seed: "N+1 rule is not met"; XAPI: HOST_NOT_ENOUGH_FREE_MEMORY; CloudStack: a VM would be stopped). Invalid: a plan that `replayPlan` rejects.',
      `Targets: ours above the optimum on ${t.oursAboveOptimum.length} pools; an alternative with fewer migrations than ours on ${t.alternativeFewerThanOurs.length}; ours refused where another planner fits on ${t.oursRefusedButAnotherFits.length}; refused by every planner: ${t.refusedByAll} (${t.refusedByAllProvablyInfeasible} provably: the VMs exceed N+1 memory, or the first host's largest VM fits on no other host).`,
    ],
  };

  const hostCounts = [...new Set(pools.map((p) => p.hosts))];
  const common = commonPools(outcomes);
  const ratio = (planner: string, hosts: number): Cell => {
    const selected = outcomes.filter(
      (o) =>
        o.planner === planner && common.has(o.pool) && pools.find((p) => p.id === o.pool)?.hosts === hosts,
    );
    return selected.length === 0
      ? undefined
      : round(mean(selected.map((o) => (o.migrations ?? 0) / o.optimal)), 3);
  };
  const bySize: Table = {
    title: 'Migrations ÷ optimum by pool size (mean over the pools every planner planned)',
    headers: ['hosts', 'pools', 'planned by all', ...PLANNERS.map((p) => p.key)],
    rows: hostCounts.map((hosts) => [
      hosts,
      pools.filter((p) => p.hosts === hosts).length,
      pools.filter((p) => p.hosts === hosts && common.has(p.id)).length,
      ...PLANNERS.map((p) => ratio(p.key, hosts)),
    ]),
  };

  const loads = [...new Set(pools.map((p) => p.nominalLoad))];
  const refusals = (planner: string, load: number): number =>
    outcomes.filter(
      (o) =>
        o.planner === planner &&
        o.status !== 'planned' &&
        pools.find((p) => p.id === o.pool)?.nominalLoad === load,
    ).length;
  const byLoad: Table = {
    title: 'Pools refused (or planned invalidly) by load, as a share of the N+1 capacity',
    headers: ['load', 'pools', 'actual load (range)', ...PLANNERS.map((p) => p.key), 'provably infeasible'],
    rows: loads.map((load) => {
      const atLoad = pools.filter((p) => p.nominalLoad === load);
      const actual = atLoad.map((p) => p.actualLoad);
      return [
        `${Math.round(load * 100)}%`,
        atLoad.length,
        `${Math.round(Math.min(...actual) * 100)}–${Math.round(Math.max(...actual) * 100)}%`,
        ...PLANNERS.map((p) => refusals(p.key, load)),
        atLoad.filter((p) => p.provablyInfeasible).length,
      ];
    }),
  };
  return [overall, bySize, byLoad];
}
