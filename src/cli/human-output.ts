/**
 * Turns engine events into lines for a person at a terminal. On a TTY, migrations in flight are
 * shown on one status line that is redrawn in place; elsewhere (logs, pipes) every event is a line.
 */
import type { EngineEvent, Finding, PlanSummary, TimedEvent } from '../engine/events.js';
import { formatBytes } from '../engine/format.js';
import { formatDuration } from '../errors.js';

export interface Output {
  write(text: string): void;
  readonly isTTY?: boolean;
}

const MARK: Record<Finding['severity'], string> = { blocker: 'BLOCKER', warning: 'warning', info: 'info' };

export function createHumanRenderer(out: Output): (event: TimedEvent) => void {
  const inFlight = new Map<string, string>();
  let statusShown = false;
  let currentHost = '';

  const clearStatus = () => {
    if (statusShown) out.write('\r\x1b[K');
    statusShown = false;
  };
  const drawStatus = () => {
    if (!out.isTTY || inFlight.size === 0) return;
    const list = [...inFlight.values()].slice(0, 4).join(', ');
    out.write(
      `\r\x1b[K  ${currentHost}: ${inFlight.size} migrating (${list}${inFlight.size > 4 ? ', ...' : ''})`,
    );
    statusShown = true;
  };
  const line = (text: string) => {
    clearStatus();
    out.write(`${text}\n`);
    drawStatus();
  };

  return (event) => {
    const text = describe(event, (vm, label) => {
      if (label === undefined) inFlight.delete(vm);
      else inFlight.set(vm, label);
    });
    if (event.type === 'host_started') currentHost = event.host;
    if (text === undefined) {
      clearStatus();
      drawStatus();
      return;
    }
    for (const l of text.split('\n')) line(l);
  };

  function describe(event: EngineEvent, track: (vm: string, label?: string) => void): string | undefined {
    switch (event.type) {
      case 'preflight':
        return [
          `Pre-flight of ${event.cluster}: ${event.hosts} hosts, ${event.runningVms} running VMs`,
          ...event.findings.map((f) => `  ${MARK[f.severity]}: ${f.message}`),
          ...(event.findings.some((f) => f.severity === 'blocker') ? [] : ['  no blockers']),
        ].join('\n');
      case 'plan':
        return renderPlan(event.plan);
      case 'run_started':
        return `${event.resumed ? 'Resuming' : 'Starting'} run ${event.runId} (${event.threads} migrations at once)`;
      case 'cluster_unmanaged':
        return `CloudStack: ${event.cluster} is Unmanaged for the run`;
      case 'ha_disabled':
        return `Pool HA turned off (saved: heartbeat SR ${event.heartbeatSrs.join(', ')}, configuration ${JSON.stringify(event.configuration)})`;
      case 'auto_poweron_disabled':
        return 'Pool auto_poweron turned off for the run';
      case 'host_started':
        return `[${event.index}/${event.total}] ${event.host}: ${event.vms} VMs to move`;
      case 'host_disabled':
        return `  ${event.host} disabled`;
      case 'hook_started':
        return `  running ${event.phase} hook ${event.hook} on ${event.host}`;
      case 'hook_finished':
        return `  ${event.phase} hook ${event.hook}: exit ${event.exitCode ?? 'none'} after ${event.seconds} s${event.output ? `\n    ${event.output.split('\n').slice(-5).join('\n    ')}` : ''}`;
      case 'migration_started':
        track(event.vm, `${event.vm} -> ${event.to}`);
        return out.isTTY
          ? undefined
          : `  ${event.vm} -> ${event.to} (${formatBytes(event.memory)})${event.attempt > 1 ? ' retry' : ''}`;
      case 'migration_finished':
        track(event.vm);
        return `  ${event.vm} -> ${event.to} done in ${event.seconds} s`;
      case 'migration_failed':
        track(event.vm);
        return `  ${event.vm} -> ${event.to} FAILED after ${event.seconds} s: ${event.error.join(' ')}${event.willRetry ? ' (retrying)' : ''}`;
      case 'host_empty':
        return `  ${event.host} is empty (${event.seconds} s)`;
      case 'host_rebooting':
        return `  ${event.host} rebooting`;
      case 'host_down':
        return `  ${event.host} is down`;
      case 'host_up':
        return `  ${event.host} is back (SSH and XAPI) after ${event.seconds} s`;
      case 'host_enabled':
        return `  ${event.host} enabled`;
      case 'host_done':
        return `[${event.index}/${event.total}] ${event.host} done in ${formatDuration(event.seconds * 1000)}, ${event.migrations} migrations`;
      case 'paused':
        return `Paused before ${event.nextHost}`;
      case 'continued':
        return `Continuing with ${event.nextHost}`;
      case 'suspended':
        return `Suspended before ${event.nextHost}: another worker resumes from the checkpoint`;
      case 'abort_requested':
        return 'Abort requested: stopping at the next safe point';
      case 'restoring':
        return `Restoring ${event.what}`;
      case 'ha_restored':
        return `Pool HA restored on heartbeat SR ${event.heartbeatSrs.join(', ')}`;
      case 'auto_poweron_restored':
        return 'Pool auto_poweron restored';
      case 'cluster_managed':
        return `CloudStack: ${event.cluster} is Managed again, ${event.hostsUp} hosts Up`;
      case 'placement_restored':
        return [
          `VMs moved back home: ${event.moved}`,
          ...event.notMoved.map((n) => `  ${n.vm} stays away from ${n.home}: ${n.reason}`),
        ].join('\n');
      case 'warning':
        return `warning: ${event.message}`;
      case 'aborted':
        return `ABORTED. Cluster restored. Hosts rebooted before the abort: ${event.hostsDone.join(', ') || 'none'}`;
      case 'needs_attention':
        return [
          `NEEDS ATTENTION on ${event.host}: ${event.reason}`,
          'Left changed:',
          ...event.leftChanged.map((l) => `  - ${l}`),
        ].join('\n');
      case 'failed':
        return `FAILED: ${event.reason}\n  error: ${event.error.join(' ')}\n  The host was re-enabled and the cluster restored.`;
      case 'finished':
        return [
          `Done in ${formatDuration(event.seconds * 1000)}: ${event.hosts.length} hosts rebooted, ${event.migrations} migrations`,
          ...event.hosts.map((h) => `  ${h.host}: ${formatDuration(h.seconds * 1000)}`),
          ...(event.attention.length > 0
            ? ['Needs a human:', ...event.attention.map((a) => `  - ${a}`)]
            : []),
        ].join('\n');
    }
  }
}

export function renderPlan(plan: PlanSummary): string {
  const lines = [`Plan for ${plan.cluster} (reboot order, pool master first):`];
  plan.hosts.forEach((host, i) => {
    const destinations = new Map<string, number>();
    for (const m of host.migrations) destinations.set(m.to, (destinations.get(m.to) ?? 0) + 1);
    const moves = [...destinations].map(([to, n]) => `${n} -> ${to}`).join(', ');
    lines.push(
      `  ${i + 1}. ${host.host}${host.master ? ' (pool master)' : ''}: ${host.migrations.length} migrations${moves ? ` (${moves})` : ''}`,
    );
  });
  lines.push(
    `  ${plan.totalMigrations} migrations (fewest possible: ${plan.optimalMigrations}), ` +
      `${formatBytes(plan.memoryMoved)} of memory moved, about ${formatDuration(plan.estimatedSeconds * 1000)}`,
  );
  return lines.join('\n');
}
