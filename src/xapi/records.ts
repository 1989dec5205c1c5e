/**
 * Typed XAPI records, converted from the raw XML-RPC structs: int64 strings become numbers, refs stay
 * opaque strings. Every field is checked; a wrong type is a protocol error naming the field, so a
 * surprising answer stops the run instead of feeding garbage to the planner.
 */
import { XapiProtocolError } from '../errors.js';

export type StringMap = Record<string, string>;

export interface PoolRecord {
  ref: string;
  uuid: string;
  nameLabel: string;
  master: string;
  haEnabled: boolean;
  haConfiguration: StringMap;
  haStatefiles: string[];
  haHostFailuresToTolerate: number;
  otherConfig: StringMap;
}

export interface HostRecord {
  ref: string;
  uuid: string;
  nameLabel: string;
  hostname: string;
  address: string;
  enabled: boolean;
  residentVms: string[];
  metrics: string;
  controlDomain: string;
  otherConfig: StringMap;
  /** `other_config.agent_start_time` (float seconds since the epoch, set when xapi starts). */
  agentStartTime: number | undefined;
}

export interface HostMetricsRecord {
  ref: string;
  live: boolean;
  memoryTotal: number;
  memoryFree: number;
}

export const VM_POWER_STATES = ['Halted', 'Paused', 'Running', 'Suspended'] as const;
export type VmPowerState = (typeof VM_POWER_STATES)[number];

export interface VmRecord {
  ref: string;
  uuid: string;
  nameLabel: string;
  powerState: VmPowerState;
  /** `OpaqueRef:NULL` when the VM runs nowhere. */
  residentOn: string;
  isControlDomain: boolean;
  isATemplate: boolean;
  isASnapshot: boolean;
  memoryStaticMax: number;
  memoryDynamicMax: number;
  memoryOverhead: number;
  vbds: string[];
  attachedPcis: string[];
  vgpus: string[];
  /** `restart`, `best-effort` or `` (not protected). */
  haRestartPriority: string;
  otherConfig: StringMap;
}

export const VBD_TYPES = ['Disk', 'CD', 'Floppy'] as const;
export type VbdType = (typeof VBD_TYPES)[number];

export interface VbdRecord {
  ref: string;
  vm: string;
  vdi: string;
  type: VbdType;
  empty: boolean;
  currentlyAttached: boolean;
}

export interface VdiRecord {
  ref: string;
  uuid: string;
  nameLabel: string;
  sr: string;
}

export interface SrRecord {
  ref: string;
  uuid: string;
  nameLabel: string;
  type: string;
  shared: boolean;
}

export const TASK_STATUSES = ['pending', 'success', 'failure', 'cancelling', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export interface TaskRecord {
  ref: string;
  uuid: string;
  nameLabel: string;
  status: TaskStatus;
  progress: number;
  /** An XML-RPC value fragment (`<value>OpaqueRef:…</value>`, `<value></value>` for void) or ``. */
  result: string;
  errorInfo: string[];
}

export const NULL_REF = 'OpaqueRef:NULL';

export function toPoolRecord(ref: string, raw: unknown): PoolRecord {
  const r = new RawRecord('pool', ref, raw);
  return {
    ref,
    uuid: r.string('uuid'),
    nameLabel: r.string('name_label'),
    master: r.string('master'),
    haEnabled: r.boolean('ha_enabled'),
    haConfiguration: r.stringMap('ha_configuration'),
    haStatefiles: r.stringArray('ha_statefiles'),
    haHostFailuresToTolerate: r.int64('ha_host_failures_to_tolerate'),
    otherConfig: r.stringMap('other_config'),
  };
}

export function toHostRecord(ref: string, raw: unknown): HostRecord {
  const r = new RawRecord('host', ref, raw);
  const otherConfig = r.stringMap('other_config');
  return {
    ref,
    uuid: r.string('uuid'),
    nameLabel: r.string('name_label'),
    hostname: r.string('hostname'),
    address: r.string('address'),
    enabled: r.boolean('enabled'),
    residentVms: r.stringArray('resident_VMs'),
    metrics: r.string('metrics'),
    controlDomain: r.string('control_domain'),
    otherConfig,
    agentStartTime: r.floatInMap(otherConfig, 'other_config', 'agent_start_time'),
  };
}

export function toHostMetricsRecord(ref: string, raw: unknown): HostMetricsRecord {
  const r = new RawRecord('host_metrics', ref, raw);
  return {
    ref,
    live: r.boolean('live'),
    memoryTotal: r.int64('memory_total'),
    memoryFree: r.int64('memory_free'),
  };
}

export function toVmRecord(ref: string, raw: unknown): VmRecord {
  const r = new RawRecord('VM', ref, raw);
  return {
    ref,
    uuid: r.string('uuid'),
    nameLabel: r.string('name_label'),
    powerState: r.oneOf('power_state', VM_POWER_STATES),
    residentOn: r.string('resident_on'),
    isControlDomain: r.boolean('is_control_domain'),
    isATemplate: r.boolean('is_a_template'),
    isASnapshot: r.boolean('is_a_snapshot'),
    memoryStaticMax: r.int64('memory_static_max'),
    memoryDynamicMax: r.int64('memory_dynamic_max'),
    memoryOverhead: r.int64('memory_overhead'),
    vbds: r.stringArray('VBDs'),
    attachedPcis: r.stringArray('attached_PCIs'),
    vgpus: r.stringArray('VGPUs'),
    haRestartPriority: r.string('ha_restart_priority'),
    otherConfig: r.stringMap('other_config'),
  };
}

export function toVbdRecord(ref: string, raw: unknown): VbdRecord {
  const r = new RawRecord('VBD', ref, raw);
  return {
    ref,
    vm: r.string('VM'),
    vdi: r.string('VDI'),
    type: r.oneOf('type', VBD_TYPES),
    empty: r.boolean('empty'),
    currentlyAttached: r.boolean('currently_attached'),
  };
}

export function toVdiRecord(ref: string, raw: unknown): VdiRecord {
  const r = new RawRecord('VDI', ref, raw);
  return { ref, uuid: r.string('uuid'), nameLabel: r.string('name_label'), sr: r.string('SR') };
}

export function toSrRecord(ref: string, raw: unknown): SrRecord {
  const r = new RawRecord('SR', ref, raw);
  return {
    ref,
    uuid: r.string('uuid'),
    nameLabel: r.string('name_label'),
    type: r.string('type'),
    shared: r.boolean('shared'),
  };
}

export function toTaskRecord(ref: string, raw: unknown): TaskRecord {
  const r = new RawRecord('task', ref, raw);
  return {
    ref,
    uuid: r.string('uuid'),
    nameLabel: r.string('name_label'),
    status: r.oneOf('status', TASK_STATUSES),
    progress: r.float('progress'),
    result: r.string('result'),
    errorInfo: r.stringArray('error_info'),
  };
}

/** Converts a `get_all_records` answer (`{ref: record}`) with one of the converters above. */
export function toRecords<T>(
  className: string,
  raw: unknown,
  convert: (ref: string, raw: unknown) => T,
): T[] {
  if (!isPlainRecord(raw)) {
    throw new XapiProtocolError(
      `XAPI ${className}.get_all_records: expected a map of records, got ${describe(raw)}`,
    );
  }
  return Object.entries(raw).map(([ref, record]) => convert(ref, record));
}

/** An int64 as xapi sends it (a decimal string), as a number. */
export function parseInt64(value: unknown, what: string): number {
  const parsed = int64Value(value);
  if (parsed === undefined) {
    throw new XapiProtocolError(`XAPI ${what}: expected an int64 (decimal string), got ${describe(value)}`);
  }
  return parsed;
}

function int64Value(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number(value);
  return undefined;
}

class RawRecord {
  readonly #fields: Record<string, unknown>;

  constructor(
    readonly className: string,
    readonly ref: string,
    raw: unknown,
  ) {
    if (!isPlainRecord(raw))
      throw new XapiProtocolError(`XAPI ${className} ${ref}: expected a record, got ${describe(raw)}`);
    this.#fields = raw;
  }

  string(field: string): string {
    const value = this.#fields[field];
    if (typeof value !== 'string') throw this.#wrongType(field, 'a string', value);
    return value;
  }

  boolean(field: string): boolean {
    const value = this.#fields[field];
    if (typeof value !== 'boolean') throw this.#wrongType(field, 'a boolean', value);
    return value;
  }

  float(field: string): number {
    const value = this.#fields[field];
    if (typeof value !== 'number') throw this.#wrongType(field, 'a float', value);
    return value;
  }

  int64(field: string): number {
    const value = this.#fields[field];
    const parsed = int64Value(value);
    if (parsed === undefined) throw this.#wrongType(field, 'an int64 (decimal string)', value);
    return parsed;
  }

  oneOf<const T extends readonly string[]>(field: string, allowed: T): T[number] {
    const value = this.string(field);
    if (!allowed.includes(value)) throw this.#wrongType(field, `one of ${allowed.join(', ')}`, value);
    return value;
  }

  stringArray(field: string): string[] {
    const value = this.#fields[field];
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
      throw this.#wrongType(field, 'a set of strings', value);
    }
    return [...value];
  }

  stringMap(field: string): StringMap {
    const value = this.#fields[field];
    if (!isPlainRecord(value) || !Object.values(value).every((item) => typeof item === 'string')) {
      throw this.#wrongType(field, 'a (string -> string) map', value);
    }
    return { ...(value as StringMap) };
  }

  /** A float kept as a string inside a map (xapi's `other_config` convention); absent is `undefined`. */
  floatInMap(map: StringMap, mapField: string, key: string): number | undefined {
    const text = map[key];
    if (text === undefined) return undefined;
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value)) {
      throw this.#wrongType(`${mapField}.${key}`, 'a number of seconds', text);
    }
    return value;
  }

  #wrongType(field: string, expected: string, value: unknown): XapiProtocolError {
    return new XapiProtocolError(
      `XAPI ${this.className} ${this.ref}: field "${field}" should be ${expected}, got ${describe(value)}`,
    );
  }
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a datetime';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `a ${typeof value}`;
}
