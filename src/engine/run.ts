/**
 * One whole run for a cluster: load any checkpoint (resume), pre-flight (also the dry run), then
 * execute. The pool connection opened by pre-flight is reused and always closed.
 */
import { describeLeftChanged, initialCheckpoint, RollingReboot } from './executor.js';
import type { RunOutcome } from './outcome.js';
import type { EngineDeps, RunControl, RunRequest } from './ports.js';
import { runPreflight } from './preflight.js';

export async function runRollingReboot(
  deps: EngineDeps,
  request: RunRequest,
  control: RunControl,
): Promise<RunOutcome> {
  const resume = await deps.checkpoints.load(request.cluster);
  if (resume) {
    deps.emit({
      type: 'warning',
      message:
        `A checkpoint of run ${resume.runId} (started ${resume.startedAt}) exists for ${request.cluster}: ` +
        (request.exec ? 'resuming it' : 'run with --exec to resume it'),
    });
  }
  const preflight = await runPreflight(deps, request, resume);
  try {
    if (!request.exec) return { status: 'dry_run', ok: preflight.ok };
    if (!resume && !preflight.ok) {
      const blockers = preflight.findings.filter((f) => f.severity === 'blocker');
      return { status: 'refused', reason: blockers.map((b) => b.message).join('; ') };
    }
    if (resume && (!preflight.cluster || !preflight.state || !preflight.connection)) {
      // The cluster is changed (the checkpoint says how) and cannot be reached yet, e.g. the pool
      // master is still down: that is not a refusal of a fresh run, it still needs a human.
      const reason =
        preflight.findings.map((f) => f.message).join('; ') || 'pre-flight could not read the cluster';
      const leftChanged = describeLeftChanged(resume);
      deps.emit({ type: 'needs_attention', host: request.cluster, reason, leftChanged });
      return { status: 'needs_attention', host: request.cluster, reason, leftChanged };
    }
    if (!preflight.cluster || !preflight.state || (!resume && !preflight.plan)) {
      return { status: 'refused', reason: 'pre-flight could not read the cluster' };
    }
    const checkpoint =
      resume ??
      initialCheckpoint(request, {
        cluster: preflight.cluster,
        state: preflight.state,
        plan: preflight.plan as NonNullable<typeof preflight.plan>,
      });
    if (!resume) await deps.checkpoints.save(checkpoint);
    return await new RollingReboot(deps, request, control, checkpoint, preflight, resume !== undefined).run();
  } finally {
    await preflight.connection?.close().catch(() => undefined);
  }
}
