/**
 * The typed XAPI operations the rolling reboot needs, over one `XapiClient`. Answers are validated
 * and converted (see records.ts); errors are the client's (XAPI codes verbatim).
 */
import { XapiProtocolError } from '../errors.js';
import type { XapiClient } from './client.js';
import {
  type HostMetricsRecord,
  type HostRecord,
  type PoolRecord,
  parseInt64,
  type SrRecord,
  toHostMetricsRecord,
  toHostRecord,
  toPoolRecord,
  toRecords,
  toSrRecord,
  toVbdRecord,
  toVdiRecord,
  toVmRecord,
  type VbdRecord,
  type VdiRecord,
  type VmRecord,
} from './records.js';

export interface XapiPoolOptions {
  /** `pool.enable_ha` / `pool.disable_ha` can take minutes (heartbeat SR, fencing daemons). */
  haTimeoutMs?: number;
}

const DEFAULT_HA_TIMEOUT_MS = 600_000;

export class XapiPool {
  readonly #haTimeoutMs: number;

  constructor(
    readonly client: XapiClient,
    options: XapiPoolOptions = {},
  ) {
    this.#haTimeoutMs = options.haTimeoutMs ?? DEFAULT_HA_TIMEOUT_MS;
  }

  get masterAddress(): string {
    return this.client.masterAddress;
  }

  async getPool(): Promise<PoolRecord> {
    const pools = toRecords('pool', await this.client.call('pool.get_all_records'), toPoolRecord);
    const [pool] = pools;
    if (pool === undefined || pools.length !== 1) {
      throw new XapiProtocolError(
        `XAPI pool.get_all_records: expected exactly one pool, got ${pools.length}`,
      );
    }
    return pool;
  }

  async getHosts(): Promise<HostRecord[]> {
    return toRecords('host', await this.client.call('host.get_all_records'), toHostRecord);
  }

  async getHost(ref: string): Promise<HostRecord> {
    return toHostRecord(ref, await this.client.call('host.get_record', [ref]));
  }

  /** Keyed by host_metrics ref (`HostRecord.metrics`). */
  async getHostMetrics(): Promise<Map<string, HostMetricsRecord>> {
    const records = toRecords(
      'host_metrics',
      await this.client.call('host_metrics.get_all_records'),
      toHostMetricsRecord,
    );
    return new Map(records.map((record) => [record.ref, record]));
  }

  /** Every VM record, templates, snapshots and control domains included: filtering is the caller's. */
  async getVms(): Promise<VmRecord[]> {
    return toRecords('VM', await this.client.call('VM.get_all_records'), toVmRecord);
  }

  async getVbds(): Promise<VbdRecord[]> {
    return toRecords('VBD', await this.client.call('VBD.get_all_records'), toVbdRecord);
  }

  async getVdis(): Promise<VdiRecord[]> {
    return toRecords('VDI', await this.client.call('VDI.get_all_records'), toVdiRecord);
  }

  async getSrs(): Promise<SrRecord[]> {
    return toRecords('SR', await this.client.call('SR.get_all_records'), toSrRecord);
  }

  async disableHost(ref: string): Promise<void> {
    await this.client.call('host.disable', [ref]);
  }

  async enableHost(ref: string): Promise<void> {
    await this.client.call('host.enable', [ref]);
  }

  /** Returns as soon as xapi accepted the reboot; the host goes down some seconds later. */
  async rebootHost(ref: string): Promise<void> {
    await this.client.call('host.reboot', [ref]);
  }

  async getServertime(ref: string): Promise<Date> {
    const time = await this.client.call('host.get_servertime', [ref]);
    if (!(time instanceof Date) || Number.isNaN(time.getTime())) {
      throw new XapiProtocolError(`XAPI host.get_servertime ${ref}: expected a datetime`);
    }
    return time;
  }

  /** Bytes. */
  async computeFreeMemory(ref: string): Promise<number> {
    return parseInt64(
      await this.client.call('host.compute_free_memory', [ref]),
      `host.compute_free_memory ${ref}`,
    );
  }

  /** VM ref → the blocker as `[CODE, ...params]`, e.g. `["VM_REQUIRES_SR", vm, sr]`. */
  async getVmsWhichPreventEvacuation(ref: string): Promise<Map<string, string[]>> {
    const raw = await this.client.call('host.get_vms_which_prevent_evacuation', [ref]);
    const what = `host.get_vms_which_prevent_evacuation ${ref}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || raw instanceof Date) {
      throw new XapiProtocolError(`XAPI ${what}: expected a map of VM refs to error descriptions`);
    }
    const blockers = new Map<string, string[]>();
    for (const [vm, reason] of Object.entries(raw)) {
      if (!Array.isArray(reason) || !reason.every((part) => typeof part === 'string')) {
        throw new XapiProtocolError(`XAPI ${what}: the reason for ${vm} is not a set of strings`);
      }
      blockers.set(vm, [...reason]);
    }
    return blockers;
  }

  /** Static call: xapi's `pool.disable_ha` takes no pool ref. */
  async disableHa(): Promise<void> {
    await this.client.callAsync('pool.disable_ha', [], { timeoutMs: this.#haTimeoutMs });
  }

  /** Static call: xapi's `pool.enable_ha` takes no pool ref. */
  async enableHa(heartbeatSrs: string[], configuration: Record<string, string>): Promise<void> {
    await this.client.callAsync('pool.enable_ha', [heartbeatSrs, configuration], {
      timeoutMs: this.#haTimeoutMs,
    });
  }

  /** Sets or (with `undefined`) removes one `other_config` key; removing a missing key is a no-op in xapi. */
  async setPoolOtherConfigKey(poolRef: string, key: string, value: string | undefined): Promise<void> {
    await this.client.call('pool.remove_from_other_config', [poolRef, key]);
    if (value !== undefined) await this.client.call('pool.add_to_other_config', [poolRef, key, value]);
  }

  /** Live-migrates a VM inside the pool (xapi ignores `live`: pool migrations of running VMs are live). */
  async poolMigrate(
    vmRef: string,
    hostRef: string,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<void> {
    await this.client.callAsync('VM.pool_migrate', [vmRef, hostRef, { live: 'true' }], options);
  }
}
