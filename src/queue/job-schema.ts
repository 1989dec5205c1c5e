/**
 * The data of a BullMQ job: only the run's id. The run record in Redis is the truth (state, options,
 * who approved); a job is just "look at this run now", so a duplicate or stale job is harmless.
 */
import { z } from 'zod';

export const RUN_QUEUE_NAME = 'reboot-runs';

/** BullMQ custom job ids cannot contain `:` and the id becomes part of one (`${runId}-${n}`). */
export const RUN_ID_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;

export const runJobSchema = z
  .object({
    runId: z.string().regex(RUN_ID_PATTERN, { message: 'must be 1-128 letters, digits, _ . or -' }),
  })
  .strict();

export type RunJobData = z.infer<typeof runJobSchema>;

/** A job id unique per enqueue of a run: a Resume enqueues the same run again. */
export function runJobId(runId: string, enqueueCount: number): string {
  return `${runId}-${enqueueCount}`;
}
