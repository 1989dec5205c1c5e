/**
 * One worker with concurrency 2 runs two clusters (two labs, each with its own CloudStack, pool and
 * credentials) at the same time, each under its own cluster lock.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Lab } from '../../lab/lab.js';
import { startTestLab } from '../support/lab-cli.js';
import {
  createApprovedRun,
  type QueueFixture,
  RecordingReporter,
  startQueueFixture,
  startTestWorker,
  waitForRunState,
} from '../support/queue-fixtures.js';

let fixture: QueueFixture;
const labs: Lab[] = [];

beforeEach(async () => {
  fixture = await startQueueFixture();
});

afterEach(async () => {
  await fixture.stop();
  for (const lab of labs.splice(0)) await lab.stop();
});

describe('worker concurrency', () => {
  it('runs two clusters at once, both done, each lab with its invariants held', async () => {
    labs.push(await startTestLab({ hosts: 2, vms: 4, clusterName: 'CLUSTER-A' }));
    labs.push(await startTestLab({ hosts: 2, vms: 4, clusterName: 'CLUSTER-B' }));
    const reporters = new Map<string, RecordingReporter>();
    await startTestWorker(fixture, labs, {
      concurrency: 2,
      reporterFor: (run) => {
        const reporter = reporters.get(run.runId) ?? new RecordingReporter();
        reporters.set(run.runId, reporter);
        return reporter;
      },
    });
    const runA = await createApprovedRun(fixture, 'CLUSTER-A');
    const runB = await createApprovedRun(fixture, 'CLUSTER-B');
    await fixture.queue.enqueue(runA.runId);
    await fixture.queue.enqueue(runB.runId);

    const endStates = ['done', 'failed', 'needs_attention', 'aborted'] as const;
    const [doneA, doneB] = await Promise.all([
      waitForRunState(fixture, runA.runId, [...endStates]),
      waitForRunState(fixture, runB.runId, [...endStates]),
    ]);
    expect(doneA.state).toBe('done');
    expect(doneB.state).toBe('done');
    for (const lab of labs) {
      const report = lab.checkInvariants();
      expect(report.violations).toEqual([]);
      expect(report.reboots).toEqual({ host1: 1, host2: 1 });
    }

    // At once, not one after the other: each run started before the other finished.
    const window = (runId: string) => {
      const reporter = reporters.get(runId);
      const start = Date.parse(reporter?.ofType('run_started')[0]?.at ?? 'x');
      const end = Date.parse(reporter?.ofType('finished')[0]?.at ?? 'x');
      return { start, end };
    };
    const a = window(runA.runId);
    const b = window(runB.runId);
    expect(a.start).toBeLessThan(b.end);
    expect(b.start).toBeLessThan(a.end);
  });
});
