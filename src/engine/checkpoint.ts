/**
 * What a run has changed and how far it got, saved after every state change, so that a crashed or
 * interrupted run can be resumed without rebooting any host twice or forgetting what to restore.
 * Hosts, SRs and VMs are kept by UUID: XAPI refs do not survive a new session.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { CodedError, ErrorCode } from '../errors.js';

export class CheckpointError extends CodedError {
  readonly code = ErrorCode.Checkpoint;
}

export const hostProgressSchema = z.object({
  name: z.string(),
  status: z.enum(['pending', 'disabled', 'empty', 'rebooting', 'done']),
  /** other_config.agent_start_time before the reboot: the host is back when XAPI shows a newer one. */
  agentStartTimeBefore: z.number().optional(),
  /** The kernel boot id over SSH before the reboot: SSH is back on a new boot when it differs. */
  bootIdBefore: z.string().optional(),
  rebootRequestedAt: z.string().optional(),
  seconds: z.number().optional(),
});

export const checkpointSchema = z.object({
  version: z.literal(1),
  runId: z.string(),
  cluster: z.object({ name: z.string(), id: z.string() }),
  startedAt: z.string(),
  phase: z.enum(['preparing', 'rebooting', 'restoring', 'restoring_placement', 'needs_attention']),
  /** The state before the run: what "restore" means. */
  saved: z.object({
    haEnabled: z.boolean(),
    haHeartbeatSrUuids: z.array(z.string()),
    haConfiguration: z.record(z.string(), z.string()),
    autoPoweron: z.string().optional(),
    managedState: z.string(),
    /** VM uuid -> host uuid where it ran before the run. */
    placement: z.record(z.string(), z.string()),
  }),
  /** What this run has changed so far and not yet put back. */
  changed: z.object({
    unmanaged: z.boolean(),
    haDisabled: z.boolean(),
    autoPoweronDisabled: z.boolean(),
  }),
  order: z.array(z.string()),
  hosts: z.record(z.string(), hostProgressSchema),
  migrations: z.number(),
  attention: z.array(z.string()),
  abortRequested: z.boolean().default(false),
});

export type Checkpoint = z.infer<typeof checkpointSchema>;
export type HostProgress = z.infer<typeof hostProgressSchema>;

export interface CheckpointStore {
  load(cluster: string): Promise<Checkpoint | undefined>;
  save(checkpoint: Checkpoint): Promise<void>;
  clear(cluster: string): Promise<void>;
}

/** One JSON file per cluster under STATE_DIR, replaced atomically (write, then rename). */
export class FileCheckpointStore implements CheckpointStore {
  constructor(readonly dir: string) {}

  async load(cluster: string): Promise<Checkpoint | undefined> {
    let text: string;
    try {
      text = await readFile(this.#path(cluster), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const parsed = checkpointSchema.safeParse(safeJson(text));
    if (!parsed.success) {
      throw new CheckpointError(
        `The checkpoint ${this.#path(cluster)} is damaged (${parsed.error.issues[0]?.message ?? 'invalid'}); ` +
          'check the cluster by hand, then delete the file to start afresh',
      );
    }
    return parsed.data;
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const path = this.#path(checkpoint.cluster.name);
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(checkpoint, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, path);
  }

  async clear(cluster: string): Promise<void> {
    await rm(this.#path(cluster), { force: true });
  }

  #path(cluster: string): string {
    return join(this.dir, `${checkpointFileName(cluster)}.checkpoint.json`);
  }
}

/** A file name for a cluster name: cluster names are validated elsewhere, this only keeps paths safe. */
export function checkpointFileName(cluster: string): string {
  return cluster.replace(/[^A-Za-z0-9._-]/g, '_');
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
