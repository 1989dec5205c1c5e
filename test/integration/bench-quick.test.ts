/**
 * `npm run bench -- --quick` as a user runs it (tsx, its own process): it exits 0 and writes
 * well-formed results for every section, with every measured run having really happened (lab runs
 * done with the invariants held, commands answered, clusters rebooted). No timing is asserted:
 * timings belong to the benchmark, not to the test suite.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

const out = mkdtempSync(join(tmpdir(), 'crb-bench-quick-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

const finite = z.number().refine(Number.isFinite, 'a finite number');
const nonNegative = finite.refine((n) => n >= 0, 'not negative');

const plannerSchema = z.object({
  pools: z
    .array(
      z.object({
        id: z.string(),
        hosts: z.number().int().min(2),
        vms: z.number().int().positive(),
        optimal: z.number(),
      }),
    )
    .min(1),
  outcomes: z
    .array(
      z.object({
        pool: z.string(),
        planner: z.enum(['ours', 'seed-greedy', 'xapi-evacuate', 'cloudstack-random', 'xen-orchestra']),
        status: z.enum(['planned', 'refused', 'invalid']),
        optimal: z.number().int().positive(),
        migrations: z.number().int().nonnegative().optional(),
        planningMs: nonNegative,
      }),
    )
    .min(5),
  planners: z
    .array(z.object({ planner: z.string(), planned: z.number().int(), ratioMean: z.number().nullable() }))
    .length(5),
  targets: z.object({ oursAboveOptimum: z.array(z.string()), refusedByAll: z.number().int() }),
});

const maintenanceSchema = z.object({
  runs: z
    .array(
      z.object({
        threads: z.number().int().positive(),
        exitCode: z.number(),
        invariantsOk: z.boolean(),
        totalS: nonNegative,
        lowerBoundS: nonNegative,
        evacuationRatioMedian: nonNegative,
        hosts: z
          .array(
            z.object({
              host: z.string(),
              vms: z.number().int(),
              evacuationS: nonNegative,
              rebootS: nonNegative,
            }),
          )
          .min(1),
        breakdown: z.object({ evacuationS: nonNegative, rebootS: nonNegative, clusterPrepS: nonNegative }),
      }),
    )
    .min(1),
});

const botSchema = z.object({
  acks: z
    .array(
      z.object({
        command: z.string(),
        target: z.enum(['bot', 'floor']),
        mode: z.enum(['burst', 'sequential']),
        sent: z.number().int().positive(),
        answered200: z.number().int(),
        p99Ms: nonNegative,
      }),
    )
    .min(5),
  approvals: z
    .array(
      z.object({
        toFirstHostDisabledMs: nonNegative,
        runState: z.string(),
        invariantsHeld: z.boolean(),
        slack: z.object({ calls: z.number().int().positive(), callsPerHost: nonNegative }),
      }),
    )
    .min(1),
  load: z.object({
    config: z.object({ clusters: z.number().int().positive() }),
    runsDone: z.number().int(),
    invariantsHeld: z.number().int(),
    peakRssMB: nonNegative,
    cpuS: nonNegative,
  }),
});

function read(name: string): unknown {
  return JSON.parse(readFileSync(join(out, name), 'utf8'));
}

function runQuickBench(): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/main.ts', '--quick', '--out', out], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4_000);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the quick benchmark did not finish in time: ${stderr}`));
    }, 140_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('npm run bench -- --quick', () => {
  it('exits 0 and writes well-formed results of runs that really happened', async () => {
    const { code, stderr } = await runQuickBench();
    expect(code, stderr).toBe(0);

    const planner = plannerSchema.parse(read('planner-quality.json'));
    const ours = planner.outcomes.filter((o) => o.planner === 'ours');
    expect(ours).toHaveLength(planner.pools.length);
    for (const o of planner.outcomes.filter((x) => x.status === 'planned')) {
      expect(o.migrations).toBeGreaterThanOrEqual(o.optimal);
    }

    const maintenance = maintenanceSchema.parse(read('maintenance-time.json'));
    for (const run of maintenance.runs) {
      expect(run.exitCode).toBe(0);
      expect(run.invariantsOk).toBe(true);
      expect(run.hosts.every((h) => h.vms > 0)).toBe(true);
    }

    const bot = botSchema.parse(read('bot.json'));
    for (const batch of bot.acks) expect(batch.answered200).toBe(batch.sent);
    for (const approval of bot.approvals) {
      expect(approval.runState).toBe('done');
      expect(approval.invariantsHeld).toBe(true);
    }
    expect(bot.load.runsDone).toBe(bot.load.config.clusters);
    expect(bot.load.invariantsHeld).toBe(bot.load.config.clusters);

    const run = z
      .object({
        command: z.string(),
        seconds: z.number(),
        machine: z.object({ nproc: z.number(), node: z.string() }),
      })
      .parse(read('run.json'));
    expect(run.command).toContain('--quick');
    const summary = readFileSync(join(out, 'summary.md'), 'utf8');
    for (const title of ['Planner quality', 'Evacuating one host', 'Slash-command ack latency', 'One worker'])
      expect(summary).toContain(title);
  }, 150_000);
});
