/**
 * XAPI records of the lab's objects, with XAPI's own field names and wire types: int64 fields as
 * decimal strings, floats as numbers (sent as <double>), datetimes as Dates, refs as strings.
 */
import {
  type LabHost,
  type LabSr,
  type LabVbd,
  type LabVdi,
  type LabVm,
  NULL_REF,
  type PoolModel,
} from './pool-model.js';

export type XapiRecord = Record<string, unknown>;

export interface LabTask {
  ref: string;
  uuid: string;
  name: string;
  status: 'pending' | 'success' | 'failure' | 'cancelling' | 'cancelled';
  progress: number;
  created: Date;
  finished: Date;
  result: string;
  errorInfo: string[];
  residentOn: string;
}

const int = (n: number) => String(Math.round(n));
const EPOCH = new Date(0);

export function poolRecord(model: PoolModel): XapiRecord {
  const pool = model.pool;
  return {
    uuid: pool.uuid,
    name_label: pool.name,
    name_description: '',
    master: pool.master,
    default_SR: pool.defaultSr,
    ha_enabled: pool.haEnabled,
    ha_configuration: { ...pool.haConfiguration },
    ha_statefiles: [...pool.haStatefiles],
    ha_host_failures_to_tolerate: int(pool.haHostFailuresToTolerate),
    ha_plan_exists_for: int(pool.haEnabled ? pool.haHostFailuresToTolerate : 0),
    ha_allow_overcommit: false,
    ha_overcommitted: false,
    other_config: { ...pool.otherConfig },
  };
}

export function hostRecord(model: PoolModel, host: LabHost): XapiRecord {
  return {
    uuid: host.uuid,
    name_label: host.name,
    name_description: 'Default install',
    hostname: host.name,
    address: host.address,
    enabled: host.enabled,
    resident_VMs: [...model.vms.values()].filter((vm) => vm.residentOn === host.ref).map((vm) => vm.ref),
    metrics: host.metricsRef,
    control_domain: host.controlDomainRef,
    memory_overhead: int(0),
    software_version: { product_version: '8.2.1', platform_name: 'XCP', xapi: '1.20' },
    API_version_major: int(2),
    API_version_minor: int(21),
    allowed_operations: host.enabled
      ? ['provision', 'evacuate', 'vm_start', 'vm_migrate']
      : ['reboot', 'shutdown', 'enable'],
    current_operations: {},
    other_config: {
      agent_start_time: host.agentStartTime.toFixed(3),
      boot_time: host.bootTime.toFixed(0),
      iscsi_iqn: `iqn.2024-01.lab:${host.name}`,
    },
    ha_statefiles: [],
    ha_network_peers: [],
    PBDs: [],
    PIFs: [],
  };
}

export function hostMetricsRecord(model: PoolModel, host: LabHost): XapiRecord {
  return {
    uuid: host.metricsUuid,
    live: host.live,
    memory_total: int(host.memoryTotal),
    memory_free: int(model.freeMemory(host.ref)),
    last_updated: new Date(),
    other_config: {},
  };
}

export function vmRecord(vm: LabVm): XapiRecord {
  return {
    uuid: vm.uuid,
    name_label: vm.name,
    name_description: '',
    power_state: vm.powerState,
    resident_on: vm.residentOn,
    scheduled_to_be_resident_on: vm.migratingTo ?? NULL_REF,
    affinity: NULL_REF,
    is_control_domain: vm.isControlDomain,
    is_a_template: vm.isTemplate,
    is_a_snapshot: false,
    memory_static_max: int(vm.memoryStaticMax),
    memory_static_min: int(vm.memoryStaticMax),
    memory_dynamic_max: int(vm.memoryStaticMax),
    memory_dynamic_min: int(vm.memoryStaticMax),
    memory_target: int(vm.memoryStaticMax),
    memory_overhead: int(vm.memoryOverhead),
    VCPUs_max: int(2),
    VBDs: [...vm.vbds],
    VIFs: [],
    VGPUs: [],
    attached_PCIs: [],
    other_config: { ...vm.otherConfig },
    ha_restart_priority: vm.haRestartPriority,
    ha_always_run: vm.haRestartPriority === 'restart',
    allowed_operations: vm.powerState === 'Running' ? ['pool_migrate', 'clean_shutdown'] : ['start'],
    current_operations: vm.migrationTask ? { [vm.migrationTask]: 'pool_migrate' } : {},
    domid: int(vm.powerState === 'Running' ? 1 : -1),
  };
}

export function srRecord(model: PoolModel, sr: LabSr): XapiRecord {
  return {
    uuid: sr.uuid,
    name_label: sr.name,
    name_description: '',
    type: sr.type,
    content_type: sr.contentType,
    shared: sr.shared,
    VDIs: [...model.vdis.values()].filter((vdi) => vdi.sr === sr.ref).map((vdi) => vdi.ref),
    PBDs: [],
  };
}

export function vdiRecord(model: PoolModel, vdi: LabVdi): XapiRecord {
  return {
    uuid: vdi.uuid,
    name_label: vdi.name,
    name_description: '',
    SR: vdi.sr,
    type: vdi.type,
    virtual_size: int(vdi.virtualSize),
    VBDs: [...model.vbds.values()].filter((vbd) => vbd.vdi === vdi.ref).map((vbd) => vbd.ref),
    sharable: false,
    read_only: false,
  };
}

export function vbdRecord(vbd: LabVbd): XapiRecord {
  return {
    uuid: vbd.uuid,
    VM: vbd.vm,
    VDI: vbd.vdi,
    type: vbd.type,
    empty: vbd.empty,
    mode: vbd.type === 'CD' ? 'RO' : 'RW',
    userdevice: vbd.userdevice,
    device: vbd.type === 'CD' ? 'xvdd' : 'xvda',
    currently_attached: true,
    bootable: vbd.type === 'Disk',
  };
}

export function taskRecord(task: LabTask): XapiRecord {
  return {
    uuid: task.uuid,
    name_label: task.name,
    name_description: '',
    status: task.status,
    progress: task.progress,
    created: task.created,
    finished: task.status === 'pending' ? EPOCH : task.finished,
    result: task.result,
    error_info: [...task.errorInfo],
    resident_on: task.residentOn,
    allowed_operations: task.status === 'pending' ? ['cancel'] : [],
    current_operations: {},
    other_config: {},
    subtasks: [],
  };
}
