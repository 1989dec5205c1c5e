/**
 * Reads a pool's live state from XAPI in one pass and turns it into the planner's snapshot.
 * Objects are identified by UUID in the snapshot (refs are not stable across sessions); the state
 * keeps the uuid <-> ref maps the executor needs to call XAPI.
 */
import type {
  HostMetricsRecord,
  HostRecord,
  PoolRecord,
  SrRecord,
  VbdRecord,
  VdiRecord,
  VmRecord,
} from '../xapi/records.js';
import type { PoolSnapshot } from './snapshot.js';

/** The XAPI operations the engine uses; `XapiPool` implements them over the wire. */
export interface HypervisorPool {
  readonly masterAddress: string;
  getPool(): Promise<PoolRecord>;
  getHosts(): Promise<HostRecord[]>;
  getHost(ref: string): Promise<HostRecord>;
  getHostMetrics(): Promise<Map<string, HostMetricsRecord>>;
  getVms(): Promise<VmRecord[]>;
  getVbds(): Promise<VbdRecord[]>;
  getVdis(): Promise<VdiRecord[]>;
  getSrs(): Promise<SrRecord[]>;
  disableHost(ref: string): Promise<void>;
  enableHost(ref: string): Promise<void>;
  rebootHost(ref: string): Promise<void>;
  computeFreeMemory(ref: string): Promise<number>;
  getVmsWhichPreventEvacuation(ref: string): Promise<Map<string, string[]>>;
  disableHa(): Promise<void>;
  enableHa(heartbeatSrs: string[], configuration: Record<string, string>): Promise<void>;
  setPoolOtherConfigKey(poolRef: string, key: string, value: string | undefined): Promise<void>;
  poolMigrate(
    vmRef: string,
    hostRef: string,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<void>;
}

export interface PoolState {
  pool: PoolRecord;
  hosts: HostRecord[];
  metrics: Map<string, HostMetricsRecord>;
  /** Running guest VMs: not control domains, templates or snapshots. */
  guests: VmRecord[];
  allVms: VmRecord[];
  hostByUuid: Map<string, HostRecord>;
  hostByRef: Map<string, HostRecord>;
  vmByUuid: Map<string, VmRecord>;
  /** Footprint of each running VM as XAPI reserves it: static max plus overhead. */
  footprint(vm: VmRecord): number;
  /** Memory the control domain and the host itself take: never available to guests. */
  reserved(host: HostRecord): number;
  isLive(host: HostRecord): boolean;
}

export async function readPoolState(xapi: HypervisorPool): Promise<PoolState> {
  const [pool, hosts, metrics, allVms] = await Promise.all([
    xapi.getPool(),
    xapi.getHosts(),
    xapi.getHostMetrics(),
    xapi.getVms(),
  ]);
  const footprint = (vm: VmRecord) => vm.memoryStaticMax + vm.memoryOverhead;
  const vmByRef = new Map(allVms.map((vm) => [vm.ref, vm]));
  const guests = allVms.filter(
    (vm) => !vm.isControlDomain && !vm.isATemplate && !vm.isASnapshot && vm.powerState === 'Running',
  );
  return {
    pool,
    hosts,
    metrics,
    guests,
    allVms,
    hostByUuid: new Map(hosts.map((h) => [h.uuid, h])),
    hostByRef: new Map(hosts.map((h) => [h.ref, h])),
    vmByUuid: new Map(allVms.map((vm) => [vm.uuid, vm])),
    footprint,
    reserved: (host) => {
      const dom0 = vmByRef.get(host.controlDomain);
      return dom0 ? footprint(dom0) : 0;
    },
    isLive: (host) => metrics.get(host.metrics)?.live === true,
  };
}

export function guestsOn(state: PoolState, hostRef: string): VmRecord[] {
  return state.guests.filter((vm) => vm.residentOn === hostRef);
}

export interface SnapshotOptions {
  ignoredHostUuids: string[];
  doneHostUuids: string[];
  blockers: Array<{ vmUuid: string; reason: string[] }>;
}

export function toSnapshot(state: PoolState, options: SnapshotOptions): PoolSnapshot {
  const master = state.hostByRef.get(state.pool.master);
  return {
    masterId: master?.uuid ?? state.pool.master,
    hosts: state.hosts.map((host) => {
      const total = (state.metrics.get(host.metrics)?.memoryTotal ?? 0) - state.reserved(host);
      const used = guestsOn(state, host.ref).reduce((sum, vm) => sum + state.footprint(vm), 0);
      return {
        id: host.uuid,
        name: host.nameLabel,
        memoryTotal: total,
        memoryFree: total - used,
        enabled: host.enabled,
        live: state.isLive(host),
      };
    }),
    vms: state.guests.map((vm) => ({
      id: vm.uuid,
      name: vm.nameLabel,
      memory: state.footprint(vm),
      residentOn: state.hostByRef.get(vm.residentOn)?.uuid ?? vm.residentOn,
    })),
    ignoredHostIds: options.ignoredHostUuids,
    doneHostIds: options.doneHostUuids,
    blockers: options.blockers.map((b) => ({ vmId: b.vmUuid, reason: b.reason })),
  };
}
