/**
 * Pre-flight: every read-only check of DESIGN.md section 2, and the plan. It is also the dry run.
 * It changes nothing anywhere; its result says whether `--exec` may start and why not.
 */
import type { CloudStackCluster, CloudStackHost } from '../cloudstack/types.js';
import { describeError } from '../errors.js';
import type { Checkpoint } from './checkpoint.js';
import type { Finding, PlanSummary } from './events.js';
import { type PlanRefusal, planRollingReboot, type RollingPlan } from './planner.js';
import { type HypervisorPool, type PoolState, readPoolState, toSnapshot } from './pool-state.js';
import type { DurationEstimates, EngineDeps, PoolConnection, RunRequest } from './ports.js';

export interface PreflightResult {
  /** True when `--exec` may start: no blocker. */
  ok: boolean;
  findings: Finding[];
  cluster?: CloudStackCluster;
  cloudHosts: CloudStackHost[];
  connection?: PoolConnection;
  state?: PoolState;
  plan?: RollingPlan;
  refusal?: PlanRefusal;
  summary?: PlanSummary;
  ignoredHostUuids: string[];
}

/** XAPI reports every VM not protected by HA as a blocker while HA is on; the run turns HA off first. */
const BLOCKERS_GONE_WITHOUT_HA = new Set(['HOST_EVACUATE_VM_NOT_HA_PROTECTED']);

export async function runPreflight(
  deps: EngineDeps,
  request: RunRequest,
  resume?: Checkpoint,
): Promise<PreflightResult> {
  const findings: Finding[] = [];
  const result: PreflightResult = { ok: false, findings, cloudHosts: [], ignoredHostUuids: [] };
  const blocker = (code: string, message: string, extra: Partial<Finding> = {}) =>
    findings.push({ severity: 'blocker', code, message, ...extra });
  const warning = (code: string, message: string, extra: Partial<Finding> = {}) =>
    findings.push({ severity: 'warning', code, message, ...extra });
  const info = (code: string, message: string) => findings.push({ severity: 'info', code, message });

  const clusters = await deps.cloud.listClusters({ name: request.cluster });
  const cluster = clusters[0];
  if (!cluster) {
    blocker('CLUSTER_NOT_FOUND', `CloudStack has no cluster named ${request.cluster}`);
    return finish();
  }
  if (clusters.length > 1) {
    blocker('CLUSTER_AMBIGUOUS', `CloudStack has ${clusters.length} clusters named ${request.cluster}`);
    return finish();
  }
  result.cluster = cluster;
  if (cluster.hypervisorType !== 'XenServer') {
    blocker(
      'CLUSTER_NOT_XENSERVER',
      `${cluster.name} runs ${cluster.hypervisorType}, not XenServer / XCP-ng`,
    );
    return finish();
  }
  if (cluster.managedState !== 'Managed' && !resume?.changed.unmanaged) {
    blocker(
      'CLUSTER_NOT_MANAGED',
      `CloudStack shows ${cluster.name} as ${cluster.managedState}: another maintenance may be under way`,
    );
  }

  const cloudHosts = await deps.cloud.listHosts({ clusterId: cluster.id });
  result.cloudHosts = cloudHosts;
  if (cloudHosts.length === 0) {
    blocker('CLUSTER_EMPTY', `CloudStack lists no hypervisor hosts in ${cluster.name}`);
    return finish();
  }

  let connection: PoolConnection;
  try {
    connection = await deps.connectPool(cloudHosts.map((h) => h.ipAddress));
  } catch (error) {
    blocker('XAPI_UNREACHABLE', `Cannot log in to the pool of ${cluster.name}: ${describeError(error)}`);
    return finish();
  }
  result.connection = connection;
  const xapi = connection.pool;
  const state = await readPoolState(xapi);
  result.state = state;

  // Membership: CloudStack and XAPI must agree on which hosts form this cluster.
  const byAddress = new Map(state.hosts.map((h) => [h.address, h]));
  const cloudAddresses = new Set(cloudHosts.map((h) => h.ipAddress));
  for (const cloudHost of cloudHosts) {
    if (!byAddress.has(cloudHost.ipAddress)) {
      blocker(
        'HOST_NOT_IN_POOL',
        `${cloudHost.name} (${cloudHost.ipAddress}) is in CloudStack's cluster but not in the XAPI pool`,
        {
          host: cloudHost.name,
        },
      );
    }
  }
  for (const host of state.hosts) {
    if (!cloudAddresses.has(host.address)) {
      blocker(
        'HOST_NOT_IN_CLOUDSTACK',
        `${host.nameLabel} (${host.address}) is in the pool but not in CloudStack's cluster`,
        {
          host: host.nameLabel,
        },
      );
    }
  }

  const hostByName = new Map(state.hosts.map((h) => [h.nameLabel, h]));
  for (const name of request.ignoreHosts) {
    const host = hostByName.get(name);
    if (!host)
      blocker('UNKNOWN_HOST', `--ignore-hosts names ${name}, which is not a host of ${cluster.name}`);
    else result.ignoredHostUuids.push(host.uuid);
  }
  if (request.ignoreHosts.length > 0 && result.ignoredHostUuids.length > 0) {
    warning('HOSTS_IGNORED', `Not rebooted and not used as destinations: ${request.ignoreHosts.join(', ')}`);
  }

  const resumingHost = resume ? currentHostOf(resume) : undefined;
  for (const host of state.hosts) {
    const cloudHost = cloudHosts.find((h) => h.ipAddress === host.address);
    if (host.uuid === resumingHost) continue;
    if (!state.isLive(host))
      blocker('HOST_NOT_LIVE', `${host.nameLabel} is not live in XAPI`, { host: host.nameLabel });
    else if (!host.enabled) {
      blocker(
        'HOST_DISABLED',
        `${host.nameLabel} is already disabled in XAPI: someone else may be working on it`,
        {
          host: host.nameLabel,
        },
      );
    }
    if (cloudHost && cluster.managedState === 'Managed' && cloudHost.state !== 'Up') {
      blocker('CLOUDSTACK_HOST_NOT_UP', `CloudStack shows ${cloudHost.name} as ${cloudHost.state}, not Up`, {
        host: cloudHost.name,
      });
    }
    if (cloudHost && cloudHost.resourceState !== 'Enabled') {
      warning(
        'CLOUDSTACK_HOST_RESOURCE_STATE',
        `CloudStack shows ${cloudHost.name} as ${cloudHost.resourceState}`,
        {
          host: cloudHost.name,
        },
      );
    }
  }

  if (state.pool.haEnabled) {
    if (state.pool.haStatefiles.length === 0) {
      blocker(
        'HA_NO_STATEFILE',
        'HA is on but the pool lists no heartbeat statefile: it could not be restored as it was',
      );
    } else {
      info(
        'HA_ENABLED',
        'HA is on: it is turned off for the run and restored with the same heartbeat SRs and configuration',
      );
    }
  }
  if (state.pool.otherConfig.auto_poweron === 'true') {
    info(
      'AUTO_POWERON',
      'Pool auto_poweron is on: it is turned off for the run (so rebooting hosts start no VMs) and restored',
    );
  }

  // SSH is how the run knows a host is back: a wrong key, passphrase or host key must refuse now,
  // not after the first host has been emptied.
  await Promise.all(
    state.hosts
      .filter(
        (host) =>
          host.uuid !== resumingHost && !result.ignoredHostUuids.includes(host.uuid) && state.isLive(host),
      )
      .map(async (host) => {
        try {
          await deps.shell.probe(host.address);
        } catch (error) {
          blocker(
            'SSH_CHECK_FAILED',
            `SSH to ${host.nameLabel} (${host.address}) failed: ${describeError(error)}`,
            {
              host: host.nameLabel,
            },
          );
        }
      }),
  );

  const vmBlockers = await findVmBlockers(xapi, result, state, resume);
  for (const entry of vmBlockers) {
    blocker(
      entry.reason[0] ?? 'BLOCKER',
      `${entry.vmName} on ${entry.hostName} cannot be migrated: ${entry.reason.join(' ')}`,
      {
        host: entry.hostName,
        vm: entry.vmName,
      },
    );
  }
  await findInsertedCds(xapi, state, vmBlockers, findings);

  const doneHostUuids = resume
    ? Object.entries(resume.hosts)
        .filter(([, progress]) => progress.status === 'done')
        .map(([uuid]) => uuid)
    : [];
  const snapshot = toSnapshot(state, {
    ignoredHostUuids: result.ignoredHostUuids,
    doneHostUuids,
    blockers: vmBlockers.map((b) => ({ vmUuid: b.vmUuid, reason: b.reason })),
  });
  // A disabled host being resumed is still ours to reboot: plan as if it were enabled.
  for (const host of snapshot.hosts) if (host.id === resumingHost) host.enabled = true;
  const planned = planRollingReboot(snapshot);
  if (planned.ok) {
    result.plan = planned.plan;
    result.summary = summarize(cluster.name, state, planned.plan, deps.estimates);
  } else {
    result.refusal = planned.refusal;
    if (planned.refusal.kind !== 'blocked')
      blocker(`PLAN_${planned.refusal.kind.toUpperCase()}`, planned.refusal.message);
  }
  return finish();

  function finish(): PreflightResult {
    result.ok = !findings.some((f) => f.severity === 'blocker');
    deps.emit({
      type: 'preflight',
      cluster: request.cluster,
      hosts: result.state?.hosts.length ?? result.cloudHosts.length,
      runningVms: result.state?.guests.length ?? 0,
      findings,
    });
    if (result.summary) deps.emit({ type: 'plan', plan: result.summary });
    return result;
  }
}

interface VmBlocker {
  vmUuid: string;
  vmName: string;
  hostName: string;
  reason: string[];
}

async function findVmBlockers(
  xapi: HypervisorPool,
  result: PreflightResult,
  state: PoolState,
  resume: Checkpoint | undefined,
): Promise<VmBlocker[]> {
  const ignored = new Set(result.ignoredHostUuids);
  const blockers: VmBlocker[] = [];
  const vmByRef = new Map(state.allVms.map((vm) => [vm.ref, vm]));
  for (const host of state.hosts) {
    if (ignored.has(host.uuid) || resume?.hosts[host.uuid]?.status === 'done' || !state.isLive(host))
      continue;
    const reported = await xapi.getVmsWhichPreventEvacuation(host.ref);
    for (const [vmRef, reason] of reported) {
      if (BLOCKERS_GONE_WITHOUT_HA.has(reason[0] ?? '') && state.pool.haEnabled) continue;
      const vm = vmByRef.get(vmRef);
      blockers.push({
        vmUuid: vm?.uuid ?? vmRef,
        vmName: vm?.nameLabel ?? vmRef,
        hostName: host.nameLabel,
        reason,
      });
    }
    for (const vm of state.allVms) {
      if (
        vm.isControlDomain ||
        vm.residentOn !== host.ref ||
        vm.powerState === 'Running' ||
        vm.powerState === 'Halted'
      )
        continue;
      // A paused VM cannot live-migrate and a reboot would destroy it.
      blockers.push({
        vmUuid: vm.uuid,
        vmName: vm.nameLabel,
        hostName: host.nameLabel,
        reason: ['VM_BAD_POWER_STATE', vm.ref, 'running', vm.powerState.toLowerCase()],
      });
    }
    for (const vm of state.guests.filter((g) => g.residentOn === host.ref)) {
      if (reported.has(vm.ref)) continue;
      if (vm.attachedPcis.length > 0) {
        blockers.push({
          vmUuid: vm.uuid,
          vmName: vm.nameLabel,
          hostName: host.nameLabel,
          reason: ['VM_HAS_PCI_ATTACHED', vm.ref],
        });
      } else if (vm.vgpus.length > 0) {
        blockers.push({
          vmUuid: vm.uuid,
          vmName: vm.nameLabel,
          hostName: host.nameLabel,
          reason: ['VM_HAS_VGPU', vm.ref],
        });
      }
    }
  }
  return blockers;
}

/** An ISO in a CD drive: on a local ISO SR it pins the VM (blocker), on a shared one it is worth a warning. */
async function findInsertedCds(
  xapi: HypervisorPool,
  state: PoolState,
  blockers: VmBlocker[],
  findings: Finding[],
): Promise<void> {
  const [vbds, vdis, srs] = await Promise.all([xapi.getVbds(), xapi.getVdis(), xapi.getSrs()]);
  const vdiByRef = new Map(vdis.map((vdi) => [vdi.ref, vdi]));
  const srByRef = new Map(srs.map((sr) => [sr.ref, sr]));
  const guestByRef = new Map(state.guests.map((vm) => [vm.ref, vm]));
  const alreadyBlocked = new Set(blockers.map((b) => b.vmUuid));
  for (const vbd of vbds) {
    if (vbd.type !== 'CD' || vbd.empty) continue;
    const vm = guestByRef.get(vbd.vm);
    if (!vm || alreadyBlocked.has(vm.uuid)) continue;
    const vdi = vdiByRef.get(vbd.vdi);
    const sr = vdi ? srByRef.get(vdi.sr) : undefined;
    const host = state.hostByRef.get(vm.residentOn)?.nameLabel;
    const iso = vdi?.nameLabel ?? vbd.vdi;
    if (sr && !sr.shared) {
      findings.push({
        severity: 'blocker',
        code: 'VM_REQUIRES_SR',
        host,
        vm: vm.nameLabel,
        message: `${vm.nameLabel} on ${host} has ${iso} inserted from the local SR ${sr.nameLabel}: eject it first`,
      });
    } else {
      findings.push({
        severity: 'warning',
        code: 'CD_INSERTED',
        host,
        vm: vm.nameLabel,
        message: `${vm.nameLabel} has ${iso} inserted (on a shared SR, so it can still migrate)`,
      });
    }
  }
}

function currentHostOf(checkpoint: Checkpoint): string | undefined {
  return Object.entries(checkpoint.hosts).find(([, p]) => p.status !== 'pending' && p.status !== 'done')?.[0];
}

export function summarize(
  clusterName: string,
  state: PoolState,
  plan: RollingPlan,
  estimates: DurationEstimates,
): PlanSummary {
  const nameOf = (uuid: string) => state.hostByUuid.get(uuid)?.nameLabel ?? uuid;
  const masterUuid = state.hostByRef.get(state.pool.master)?.uuid;
  let estimatedMs = 0;
  const hosts = plan.steps.map((step) => {
    const host = state.hostByUuid.get(step.hostId);
    const memory = step.migrations.reduce((sum, m) => sum + m.memory, 0);
    estimatedMs += (memory / estimates.migrationBytesPerSecond) * 1000 + estimates.hostRebootMs;
    return {
      host: step.hostName,
      master: step.hostId === masterUuid,
      vms: host ? state.guests.filter((vm) => vm.residentOn === host.ref).length : 0,
      migrations: step.migrations.map((m) => ({ vm: m.vmName, to: nameOf(m.to), memory: m.memory })),
    };
  });
  return {
    cluster: clusterName,
    hosts,
    totalMigrations: plan.totalMigrations,
    optimalMigrations: plan.optimalMigrations,
    memoryMoved: plan.memoryMoved,
    estimatedSeconds: Math.round(estimatedMs / 1000),
  };
}
