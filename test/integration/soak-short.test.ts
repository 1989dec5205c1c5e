/**
 * The soak (bench/soak.ts) in its short form: a few consecutive runs over two lab clusters with
 * faults drawn from a fixed seed (SOAK_SEED picks another), each judged by the lab's invariant
 * checker and log. The full form is `npm run soak` (50 runs by default).
 */
import { describe, expect, it } from 'vitest';
import { isUnexpected, renderSoakReport, runSoak } from '../../bench/soak.js';

/** Draws, among others, a halt that is resumed, one finished by hand, a failure and a clean run. */
const SEED = Number(process.env.SOAK_SEED ?? 11);

describe('the soak, short form', () => {
  it('6 runs over 2 clusters with random faults: no invariant violation, every ending one its fault allows', async () => {
    const report = await runSoak({ runs: 6, clusters: 2, seed: SEED });
    const summary = renderSoakReport(report);
    expect(report.runs.map((run) => run.index)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(
      report.runs.flatMap((run) => run.violations),
      summary,
    ).toEqual([]);
    expect(
      report.runs.filter(isUnexpected).map((run) => `#${run.index} ${run.fault}: ${run.path.join(' -> ')}`),
      summary,
    ).toEqual([]);
    // The faults were real: at least one run was halted or stopped and then put right.
    expect(
      report.runs.some((run) => run.path.length > 1),
      summary,
    ).toBe(true);
  }, 120_000);
});
