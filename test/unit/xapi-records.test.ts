import { describe, expect, it } from 'vitest';
import { XapiProtocolError } from '../../src/errors.js';
import { isReadOnlyMethod } from '../../src/xapi/client.js';
import {
  parseInt64,
  toHostMetricsRecord,
  toHostRecord,
  toPoolRecord,
  toRecords,
  toSrRecord,
  toTaskRecord,
  toVbdRecord,
  toVdiRecord,
  toVmRecord,
} from '../../src/xapi/records.js';

// Raw records as the xmlrpc package decodes xapi's answers: int64 as strings, bools and floats typed.
const rawPool = {
  uuid: 'pool-uuid',
  name_label: 'CLUSTER-1',
  master: 'OpaqueRef:h1',
  ha_enabled: true,
  ha_configuration: { timeout: '60' },
  ha_statefiles: ['OpaqueRef:vdi-hb'],
  ha_host_failures_to_tolerate: '1',
  ha_plan_exists_for: '1',
  other_config: { auto_poweron: 'true' },
};

const rawHost = {
  uuid: 'host-uuid',
  name_label: 'xen-01',
  hostname: 'xen-01.example',
  address: '192.0.2.11',
  enabled: true,
  resident_VMs: ['OpaqueRef:dom0', 'OpaqueRef:vm1'],
  metrics: 'OpaqueRef:m1',
  control_domain: 'OpaqueRef:dom0',
  memory_overhead: '123',
  other_config: { agent_start_time: '1704110400.25', boot_time: '1704110300.' },
};

const rawVm = {
  uuid: 'vm-uuid',
  name_label: 'web-1',
  power_state: 'Running',
  resident_on: 'OpaqueRef:h1',
  is_control_domain: false,
  is_a_template: false,
  is_a_snapshot: false,
  memory_static_max: '8589934592',
  memory_dynamic_max: '4294967296',
  memory_overhead: '71303168',
  VBDs: ['OpaqueRef:vbd1'],
  attached_PCIs: [],
  VGPUs: [],
  ha_restart_priority: 'restart',
  other_config: {},
  domid: '7',
};

function protocolErrorOf(run: () => unknown): XapiProtocolError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(XapiProtocolError);
    return error as XapiProtocolError;
  }
  throw new Error('expected a XapiProtocolError');
}

describe('XAPI record converters', () => {
  it('converts a pool record, int64 strings to numbers', () => {
    expect(toPoolRecord('OpaqueRef:pool', rawPool)).toEqual({
      ref: 'OpaqueRef:pool',
      uuid: 'pool-uuid',
      nameLabel: 'CLUSTER-1',
      master: 'OpaqueRef:h1',
      haEnabled: true,
      haConfiguration: { timeout: '60' },
      haStatefiles: ['OpaqueRef:vdi-hb'],
      haHostFailuresToTolerate: 1,
      otherConfig: { auto_poweron: 'true' },
    });
  });

  it('converts a host record and reads agent_start_time as float seconds', () => {
    expect(toHostRecord('OpaqueRef:h1', rawHost)).toEqual({
      ref: 'OpaqueRef:h1',
      uuid: 'host-uuid',
      nameLabel: 'xen-01',
      hostname: 'xen-01.example',
      address: '192.0.2.11',
      enabled: true,
      residentVms: ['OpaqueRef:dom0', 'OpaqueRef:vm1'],
      metrics: 'OpaqueRef:m1',
      controlDomain: 'OpaqueRef:dom0',
      otherConfig: { agent_start_time: '1704110400.25', boot_time: '1704110300.' },
      agentStartTime: 1704110400.25,
    });
    expect(toHostRecord('OpaqueRef:h1', { ...rawHost, other_config: {} }).agentStartTime).toBeUndefined();
    const error = protocolErrorOf(() =>
      toHostRecord('OpaqueRef:h1', { ...rawHost, other_config: { agent_start_time: 'yesterday' } }),
    );
    expect(error.message).toContain('other_config.agent_start_time');
  });

  it('converts host metrics with memory above 2^32', () => {
    expect(
      toHostMetricsRecord('OpaqueRef:m1', {
        live: true,
        memory_total: '274877906944',
        memory_free: '137438953472',
        last_updated: new Date(0),
      }),
    ).toEqual({ ref: 'OpaqueRef:m1', live: true, memoryTotal: 2 ** 38, memoryFree: 2 ** 37 });
  });

  it('converts a VM record', () => {
    expect(toVmRecord('OpaqueRef:vm1', rawVm)).toEqual({
      ref: 'OpaqueRef:vm1',
      uuid: 'vm-uuid',
      nameLabel: 'web-1',
      powerState: 'Running',
      residentOn: 'OpaqueRef:h1',
      isControlDomain: false,
      isATemplate: false,
      isASnapshot: false,
      memoryStaticMax: 8589934592,
      memoryDynamicMax: 4294967296,
      memoryOverhead: 71303168,
      vbds: ['OpaqueRef:vbd1'],
      attachedPcis: [],
      vgpus: [],
      haRestartPriority: 'restart',
      otherConfig: {},
    });
  });

  it('converts VBD, VDI, SR and task records', () => {
    expect(
      toVbdRecord('OpaqueRef:vbd1', {
        VM: 'OpaqueRef:vm1',
        VDI: 'OpaqueRef:NULL',
        type: 'CD',
        empty: true,
        currently_attached: false,
      }),
    ).toEqual({
      ref: 'OpaqueRef:vbd1',
      vm: 'OpaqueRef:vm1',
      vdi: 'OpaqueRef:NULL',
      type: 'CD',
      empty: true,
      currentlyAttached: false,
    });
    expect(toVdiRecord('OpaqueRef:vdi1', { uuid: 'u', name_label: 'disk', SR: 'OpaqueRef:sr1' })).toEqual({
      ref: 'OpaqueRef:vdi1',
      uuid: 'u',
      nameLabel: 'disk',
      sr: 'OpaqueRef:sr1',
    });
    expect(
      toSrRecord('OpaqueRef:sr1', { uuid: 'u', name_label: 'Local', type: 'lvm', shared: false }),
    ).toEqual({
      ref: 'OpaqueRef:sr1',
      uuid: 'u',
      nameLabel: 'Local',
      type: 'lvm',
      shared: false,
    });
    expect(
      toTaskRecord('OpaqueRef:t', {
        uuid: 'u',
        name_label: 'Async.VM.pool_migrate',
        status: 'failure',
        progress: 1,
        result: '',
        error_info: ['VM_MIGRATE_FAILED', 'a', 'b', 'c', 'msg'],
      }),
    ).toEqual({
      ref: 'OpaqueRef:t',
      uuid: 'u',
      nameLabel: 'Async.VM.pool_migrate',
      status: 'failure',
      progress: 1,
      result: '',
      errorInfo: ['VM_MIGRATE_FAILED', 'a', 'b', 'c', 'msg'],
    });
  });

  it('converts a get_all_records map', () => {
    const vms = toRecords(
      'VM',
      { 'OpaqueRef:vm1': rawVm, 'OpaqueRef:vm2': { ...rawVm, name_label: 'web-2' } },
      toVmRecord,
    );
    expect(vms.map((vm) => [vm.ref, vm.nameLabel])).toEqual([
      ['OpaqueRef:vm1', 'web-1'],
      ['OpaqueRef:vm2', 'web-2'],
    ]);
    expect(protocolErrorOf(() => toRecords('VM', ['OpaqueRef:vm1'], toVmRecord)).message).toContain(
      'VM.get_all_records',
    );
  });

  it.each([
    ['a non-decimal int64', 'memory_static_max', 'lots', 'an int64'],
    ['a string for a boolean', 'is_control_domain', 'false', 'a boolean'],
    ['an unknown power state', 'power_state', 'running', 'one of Halted'],
    ['a missing field', 'uuid', undefined, 'a string'],
    ['a set with a non-string', 'VBDs', ['OpaqueRef:vbd1', 3], 'a set of strings'],
    ['a map with a non-string value', 'other_config', { a: 1 }, 'a (string -> string) map'],
  ])('names the field on %s', (_what, field, value, expected) => {
    const raw: Record<string, unknown> = { ...rawVm, [field]: value };
    if (value === undefined) delete raw[field];
    const error = protocolErrorOf(() => toVmRecord('OpaqueRef:vm1', raw));
    expect(error.message).toContain(`"${field}"`);
    expect(error.message).toContain(expected);
    expect(error.message).toContain('OpaqueRef:vm1');
  });

  it('refuses a record that is not a struct', () => {
    expect(protocolErrorOf(() => toHostRecord('OpaqueRef:h1', 'OpaqueRef:h1')).message).toContain(
      'expected a record',
    );
  });

  it('parses int64 values', () => {
    expect(parseInt64('9007199254740991', 'x')).toBe(2 ** 53 - 1);
    expect(parseInt64('-1', 'x')).toBe(-1);
    expect(parseInt64(12, 'x')).toBe(12);
    expect(() => parseInt64('1.5', 'host.compute_free_memory')).toThrow(XapiProtocolError);
    expect(() => parseInt64('', 'x')).toThrow(XapiProtocolError);
  });
});

describe('isReadOnlyMethod', () => {
  it.each([
    'VM.get_all_records',
    'VM.get_record',
    'host.get_all',
    'host.get_address',
    'task.get_record',
    'pool.get_all_records',
    'VM.get_all_records_where',
    'host.compute_free_memory',
    'host.get_servertime',
    'host.get_vms_which_prevent_evacuation',
    'VM.assert_can_boot_here',
  ])('%s is read-only', (method) => {
    expect(isReadOnlyMethod(method)).toBe(true);
  });

  it.each([
    'VM.pool_migrate',
    'Async.VM.pool_migrate',
    'Async.host.get_servertime',
    'host.disable',
    'host.reboot',
    'pool.disable_ha',
    'pool.add_to_other_config',
    'task.cancel',
    'task.destroy',
    'VM.set_name_label',
  ])('%s is not read-only', (method) => {
    expect(isReadOnlyMethod(method)).toBe(false);
  });
});
