/**
 * Waiting for a rebooting host: first until it is gone (or visibly on a new boot), then until it
 * is back on a new boot over both SSH and XAPI, live. Every wait is bounded. A changed SSH host
 * key is never waited out: it needs a human.
 */
import { describeError, SshAuthError, SshHostKeyChangedError, SshHostKeyUnknownError } from '../errors.js';
import { NeedsAttentionError } from './outcome.js';
import type { HypervisorPool } from './pool-state.js';
import type { EngineTimings, HostShell } from './ports.js';
import { pollUntil, withTimeout } from './waits.js';

export interface RebootingHost {
  name: string;
  ref: string;
  metricsRef: string;
  address: string;
  bootIdBefore?: string;
  agentStartTimeBefore?: number;
}

const isTrustProblem = (error: unknown) =>
  error instanceof SshHostKeyChangedError ||
  error instanceof SshHostKeyUnknownError ||
  error instanceof SshAuthError;

/** Resolves once the host has gone down (SSH refuses) or is already up on a new boot. */
export async function waitUntilDown(
  host: RebootingHost,
  shell: HostShell,
  timings: EngineTimings,
  signal?: AbortSignal,
): Promise<void> {
  await pollUntil(
    async () => {
      try {
        const { bootId } = await shell.probe(host.address);
        return host.bootIdBefore !== undefined && bootId !== host.bootIdBefore ? true : undefined;
      } catch {
        // Refused, timed out, or a new host key: in every case the old boot is gone. The wait
        // for the host to come back reports a key problem.
        return true;
      }
    },
    {
      what: `${host.name} to go down after host.reboot`,
      timeoutMs: timings.hostShutdownTimeoutMs,
      intervalMs: Math.min(timings.pollIntervalMs, 1000),
      signal,
    },
  ).catch((error: unknown) => {
    throw new NeedsAttentionError(
      host.name,
      `${host.name} was asked to reboot but did not go down: ${describeError(error)}`,
      { cause: error },
    );
  });
}

/** Resolves once SSH answers on a new boot and XAPI shows a newer agent start and the host live. */
export async function waitUntilBack(
  host: RebootingHost,
  xapi: HypervisorPool,
  shell: HostShell,
  timings: EngineTimings,
  signal?: AbortSignal,
): Promise<{ agentStartTime: number }> {
  const attemptMs = Math.max(timings.pollIntervalMs * 4, 10_000);
  // How far the host got, so "not back" tells a dead host from one whose XAPI did not start.
  let reached = 'SSH never answered on a new boot';
  try {
    return await pollUntil(
      async () => {
        const { bootId } = await shell.probe(host.address);
        if (host.bootIdBefore !== undefined && bootId === host.bootIdBefore) return undefined;
        reached = 'SSH answers on a new boot, but XAPI never showed its agent restarted';
        const record = await withTimeout(
          xapi.getHost(host.ref),
          attemptMs,
          `XAPI host.get_record of ${host.name}`,
        );
        const agentStartTime = record.agentStartTime ?? 0;
        if (host.agentStartTimeBefore !== undefined && agentStartTime <= host.agentStartTimeBefore)
          return undefined;
        reached = 'SSH and the XAPI agent are back, but XAPI never showed the host live';
        const metrics = await withTimeout(
          xapi.getHostMetrics(),
          attemptMs,
          'XAPI host_metrics.get_all_records',
        );
        if (metrics.get(record.metrics)?.live !== true) return undefined;
        return { agentStartTime };
      },
      {
        what: `${host.name} to come back (SSH on a new boot, XAPI agent restarted, host live)`,
        timeoutMs: timings.hostRebootTimeoutMs,
        intervalMs: timings.pollIntervalMs,
        isFatal: isTrustProblem,
        signal,
      },
    );
  } catch (error) {
    if (error instanceof SshHostKeyChangedError || error instanceof SshHostKeyUnknownError) {
      throw new NeedsAttentionError(
        host.name,
        `${host.name} came back with an SSH host key that known_hosts does not list: ${error.message}. ` +
          'Check the host is the machine you expect, update SSH_KNOWN_HOSTS_FILE, then resume',
        { cause: error },
      );
    }
    throw new NeedsAttentionError(
      host.name,
      `${host.name} is not back: ${describeError(error)}; ${reached}`,
      { cause: error },
    );
  }
}
