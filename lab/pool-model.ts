/**
 * The simulated XenServer / XCP-ng pool: hosts, VMs, storage, HA, and the rules XAPI enforces.
 * The XAPI, SSH and CloudStack servers of the lab are views of this model. Every change is written
 * to the operation log, which is what tests judge the bot by.
 */
import { randomUUID } from 'node:crypto';
import { MigrationLinks } from './migration-links.js';
import type { OperationLog } from './operation-log.js';
import { DOM0_MEMORY_BYTES, MiB, type PoolSpec, type VmSpec } from './pool-generator.js';
import { XapiFault } from './xmlrpc-server.js';

export const NULL_REF = 'OpaqueRef:NULL';

export type HostPower = 'up' | 'shutting_down' | 'down' | 'booting';

export interface LabTimings {
  /** Between `host.reboot` returning and the host going down (real xapi waits 10 s). */
  rebootDelayMs: number;
  /** From going down until SSH answers again. */
  bootMs: number;
  /** From SSH answering until XAPI answers again. */
  xapiStartMs: number;
  /** After XAPI starts on the master, it answers HOST_STILL_BOOTING this long. */
  xapiWarmupMs: number;
  /** Fixed cost of each migration on top of the memory transfer (setup, final pause). */
  migrationOverheadMs: number;
  /** Multiplies every migration's transfer time: 0.01 makes a 16 GiB VM move in 0.14 s instead of 14 s. */
  bandwidthScale: number;
}

export const DEFAULT_TIMINGS: LabTimings = {
  rebootDelayMs: 10_000,
  bootMs: 120_000,
  xapiStartMs: 30_000,
  xapiWarmupMs: 5_000,
  migrationOverheadMs: 2_000,
  bandwidthScale: 1,
};

export interface LabHost {
  ref: string;
  uuid: string;
  name: string;
  address: string;
  memoryTotal: number;
  nicBytesPerSecond: number;
  enabled: boolean;
  power: HostPower;
  live: boolean;
  liveChangedAt: number;
  agentStartTime: number;
  bootTime: number;
  bootId: string;
  xapiStartedAt: number;
  metricsRef: string;
  metricsUuid: string;
  controlDomainRef: string;
  localSrRef: string;
  rebootCount: number;
}

export interface LabVm {
  ref: string;
  uuid: string;
  name: string;
  memoryStaticMax: number;
  memoryOverhead: number;
  powerState: 'Running' | 'Halted';
  residentOn: string;
  isControlDomain: boolean;
  isTemplate: boolean;
  vbds: string[];
  haRestartPriority: string;
  otherConfig: Record<string, string>;
  /** Destination host while a migration is in flight (memory is reserved there). */
  migratingTo?: string;
  migrationTask?: string;
}

export interface LabSr {
  ref: string;
  uuid: string;
  name: string;
  type: string;
  shared: boolean;
  contentType: string;
}

export interface LabVdi {
  ref: string;
  uuid: string;
  name: string;
  sr: string;
  type: string;
  virtualSize: number;
}

export interface LabVbd {
  ref: string;
  uuid: string;
  vm: string;
  vdi: string;
  type: 'Disk' | 'CD';
  empty: boolean;
  userdevice: string;
}

export interface LabPool {
  ref: string;
  uuid: string;
  name: string;
  master: string;
  haEnabled: boolean;
  haStatefiles: string[];
  haConfiguration: Record<string, string>;
  haHostFailuresToTolerate: number;
  otherConfig: Record<string, string>;
  defaultSr: string;
}

/** What a rolling reboot must put back as it found it (invariant I6), in comparable form. */
export interface RestorableState {
  haEnabled: boolean;
  haHeartbeatSrs: string[];
  haConfiguration: Record<string, string>;
  autoPoweron: string | undefined;
}

interface HostFaults {
  neverComesBack: boolean;
  xapiNeverComesBack: boolean;
  extraBootMs: number;
}

export type PowerListener = (host: LabHost, power: HostPower) => void;

const ref = () => `OpaqueRef:${randomUUID()}`;

/** Read through a function so TypeScript does not narrow a field that changes across an await. */
const isUp = (host: LabHost) => host.power === 'up' || host.power === 'shutting_down';

export class PoolModel {
  readonly pool: LabPool;
  readonly hosts: LabHost[] = [];
  readonly vms = new Map<string, LabVm>();
  readonly srs = new Map<string, LabSr>();
  readonly vdis = new Map<string, LabVdi>();
  readonly vbds = new Map<string, LabVbd>();
  readonly #links = new MigrationLinks();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #sleepers = new Set<() => void>();
  readonly #powerListeners = new Set<PowerListener>();
  readonly #hostFaults = new Map<string, HostFaults>();
  readonly #migrationFailures = new Map<string, number>();
  #activeMigrations = 0;
  /** Migrations per source host from their start (set-up included), not only while bytes flow. */
  readonly #activeBySource = new Map<string, number>();
  #maxConcurrentMigrations = 0;
  readonly #maxConcurrentBySource = new Map<string, number>();
  #stopped = false;

  constructor(
    spec: PoolSpec,
    addresses: string[],
    readonly timings: LabTimings,
    readonly log: OperationLog,
    options: { poolName: string; haEnabled: boolean; autoPoweron: boolean },
  ) {
    const sharedSr = this.#addSr({
      name: 'NFS shared storage',
      type: 'nfs',
      shared: true,
      contentType: 'user',
    });
    this.#addSr({ name: 'ISO library', type: 'iso', shared: true, contentType: 'iso' });
    const now = Date.now() / 1000;
    spec.hosts.forEach((hostSpec, index) => {
      const address = addresses[index];
      if (!address) throw new Error(`no address for host ${hostSpec.name}`);
      const localSr = this.#addSr({
        name: `Local storage on ${hostSpec.name}`,
        type: 'lvm',
        shared: false,
        contentType: 'user',
      });
      const host: LabHost = {
        ref: ref(),
        uuid: randomUUID(),
        name: hostSpec.name,
        address,
        memoryTotal: hostSpec.memoryBytes,
        nicBytesPerSecond: hostSpec.nicBytesPerSecond,
        enabled: true,
        power: 'up',
        live: true,
        liveChangedAt: Date.now(),
        agentStartTime: now - 86_400 + index,
        bootTime: now - 86_400,
        bootId: randomUUID(),
        xapiStartedAt: 0,
        metricsRef: ref(),
        metricsUuid: randomUUID(),
        controlDomainRef: ref(),
        localSrRef: localSr.ref,
        rebootCount: 0,
      };
      this.hosts.push(host);
      this.vms.set(host.controlDomainRef, {
        ref: host.controlDomainRef,
        uuid: randomUUID(),
        name: `Control domain on host: ${host.name}`,
        memoryStaticMax: DOM0_MEMORY_BYTES,
        memoryOverhead: 0,
        powerState: 'Running',
        residentOn: host.ref,
        isControlDomain: true,
        isTemplate: false,
        vbds: [],
        haRestartPriority: '',
        otherConfig: {},
      });
    });
    const master = this.hosts[0];
    if (!master) throw new Error('a pool needs at least one host');
    for (const vmSpec of spec.vms) this.#addVm(vmSpec, 'Running', sharedSr.ref);
    for (const vmSpec of spec.autoPoweronVms) {
      const vm = this.#addVm(vmSpec, 'Halted', sharedSr.ref);
      vm.otherConfig.auto_poweron = 'true';
    }
    this.#addTemplate(sharedSr.ref);
    const heartbeat = this.#addVdi({
      name: 'Statefile for HA',
      sr: sharedSr.ref,
      type: 'ha_statefile',
      size: 4 * MiB,
    });
    this.pool = {
      ref: ref(),
      uuid: randomUUID(),
      name: options.poolName,
      master: master.ref,
      haEnabled: options.haEnabled,
      haStatefiles: options.haEnabled ? [heartbeat.ref] : [],
      haConfiguration: options.haEnabled ? { timeout: '60' } : {},
      haHostFailuresToTolerate: options.haEnabled ? 1 : 0,
      otherConfig: options.autoPoweron ? { auto_poweron: 'true' } : {},
      defaultSr: sharedSr.ref,
    };
  }

  // ---- lookups ---------------------------------------------------------------------------

  masterHost(): LabHost {
    return this.#host(this.pool.master);
  }

  hostByRef(hostRef: string): LabHost | undefined {
    return this.hosts.find((h) => h.ref === hostRef);
  }

  hostByName(name: string): LabHost {
    const host = this.hosts.find((h) => h.name === name);
    if (!host) throw new Error(`no lab host named ${name}`);
    return host;
  }

  hostByAddress(address: string): LabHost | undefined {
    return this.hosts.find((h) => h.address === address);
  }

  vmByName(name: string): LabVm {
    const vm = [...this.vms.values()].find((v) => v.name === name);
    if (!vm) throw new Error(`no lab VM named ${name}`);
    return vm;
  }

  guestVms(): LabVm[] {
    return [...this.vms.values()].filter((vm) => !vm.isControlDomain && !vm.isTemplate);
  }

  residentGuests(hostRef: string): LabVm[] {
    return this.guestVms().filter((vm) => vm.powerState === 'Running' && vm.residentOn === hostRef);
  }

  vmFootprint(vm: LabVm): number {
    return vm.memoryStaticMax + vm.memoryOverhead;
  }

  /** Free memory as `host.compute_free_memory` reports it: reservations of incoming migrations count. */
  freeMemory(hostRef: string): number {
    const host = this.#host(hostRef);
    let used = 0;
    for (const vm of this.vms.values()) {
      if (vm.powerState !== 'Running') continue;
      if (vm.residentOn === hostRef || vm.migratingTo === hostRef) used += this.vmFootprint(vm);
    }
    return host.memoryTotal - used;
  }

  restorableState(): RestorableState {
    const srs = this.pool.haStatefiles.map((vdi) => this.vdis.get(vdi)?.sr ?? `missing:${vdi}`).sort();
    return {
      haEnabled: this.pool.haEnabled,
      haHeartbeatSrs: srs,
      haConfiguration: { ...this.pool.haConfiguration },
      autoPoweron: this.pool.otherConfig.auto_poweron,
    };
  }

  migrationConcurrency(): { maxTotal: number; maxBySource: Record<string, number> } {
    const bySource: Record<string, number> = {};
    for (const [hostRef, max] of this.#maxConcurrentBySource) bySource[this.#host(hostRef).name] = max;
    return { maxTotal: this.#maxConcurrentMigrations, maxBySource: bySource };
  }

  onPowerChange(listener: PowerListener): () => void {
    this.#powerListeners.add(listener);
    return () => this.#powerListeners.delete(listener);
  }

  // ---- host operations -------------------------------------------------------------------

  disableHost(hostRef: string): void {
    const host = this.#existingHost(hostRef);
    if (!host.enabled) return;
    host.enabled = false;
    this.log.record({ kind: 'host.disabled', host: host.name });
  }

  enableHost(hostRef: string): void {
    const host = this.#existingHost(hostRef);
    if (host.power === 'shutting_down') throw new XapiFault(['HOST_DISABLED_UNTIL_REBOOT', host.ref]);
    if (host.power !== 'up') throw new XapiFault(['HOST_OFFLINE', host.ref]);
    if (host.enabled) return;
    host.enabled = true;
    this.log.record({ kind: 'host.enabled', host: host.name });
  }

  rebootHost(hostRef: string): void {
    const host = this.#existingHost(hostRef);
    if (host.power === 'shutting_down')
      throw new XapiFault(['OTHER_OPERATION_IN_PROGRESS', 'host', host.ref, 'reboot', NULL_REF]);
    if (host.power !== 'up') throw new XapiFault(['HOST_OFFLINE', host.ref]);
    if (host.enabled) throw new XapiFault(['HOST_NOT_DISABLED']);
    host.power = 'shutting_down';
    this.log.record({
      kind: 'host.reboot_requested',
      host: host.name,
      detail: { residentGuestVms: this.residentGuests(host.ref).map((vm) => vm.name) },
    });
    this.#after(this.timings.rebootDelayMs, () => this.#goDown(host));
  }

  vmsWhichPreventEvacuation(hostRef: string): Map<string, string[]> {
    const host = this.#existingHost(hostRef);
    const blockers = new Map<string, string[]>();
    for (const vm of this.residentGuests(host.ref)) {
      const localVbd = this.#localDiskSr(vm);
      if (localVbd) blockers.set(vm.ref, ['VM_REQUIRES_SR', vm.ref, localVbd]);
      else if (this.pool.haEnabled && vm.haRestartPriority !== 'restart')
        blockers.set(vm.ref, ['HOST_EVACUATE_VM_NOT_HA_PROTECTED', vm.ref]);
    }
    return blockers;
  }

  // ---- VM migration ----------------------------------------------------------------------

  async migrateVm(vmRef: string, destinationRef: string, taskRef: string): Promise<void> {
    const vm = this.vms.get(vmRef);
    if (!vm) throw new XapiFault(['HANDLE_INVALID', 'VM', vmRef]);
    const destination = this.hostByRef(destinationRef);
    if (!destination) throw new XapiFault(['HANDLE_INVALID', 'host', destinationRef]);
    if (vm.isControlDomain)
      throw new XapiFault(['OPERATION_NOT_ALLOWED', 'This operation is not allowed on a control domain']);
    if (vm.isTemplate) throw new XapiFault(['VM_IS_TEMPLATE', vm.ref, 'pool_migrate']);
    if (vm.powerState !== 'Running')
      throw new XapiFault(['VM_BAD_POWER_STATE', vm.ref, 'running', vm.powerState.toLowerCase()]);
    if (vm.migratingTo)
      throw new XapiFault([
        'OTHER_OPERATION_IN_PROGRESS',
        'VM',
        vm.ref,
        'pool_migrate',
        vm.migrationTask ?? NULL_REF,
      ]);
    const source = this.#host(vm.residentOn);
    if (source.ref === destination.ref) return;
    // xapi's assert_can_boot_here order: host live, host enabled, then the VM's SRs, then memory. A host
    // shutting down is still live (and disabled), so it answers HOST_DISABLED as in xapi.
    if (!destination.live) throw new XapiFault(['HOST_NOT_LIVE']);
    if (!destination.enabled) throw new XapiFault(['HOST_DISABLED', destination.ref]);
    const localSr = this.#localDiskSr(vm);
    if (localSr) throw new XapiFault(['VM_REQUIRES_SR', vm.ref, localSr]);
    const needed = this.vmFootprint(vm);
    const available = this.freeMemory(destination.ref);
    if (needed > available)
      throw new XapiFault(['HOST_NOT_ENOUGH_FREE_MEMORY', String(needed), String(available)]);

    vm.migratingTo = destination.ref;
    vm.migrationTask = taskRef;
    this.#activeMigrations++;
    this.#maxConcurrentMigrations = Math.max(this.#maxConcurrentMigrations, this.#activeMigrations);
    const fromSource = (this.#activeBySource.get(source.ref) ?? 0) + 1;
    this.#activeBySource.set(source.ref, fromSource);
    this.#maxConcurrentBySource.set(
      source.ref,
      Math.max(this.#maxConcurrentBySource.get(source.ref) ?? 0, fromSource),
    );
    const startedAt = Date.now();
    this.log.record({
      kind: 'vm.migration_started',
      vm: vm.name,
      host: source.name,
      detail: {
        to: destination.name,
        concurrentFromSource: fromSource,
        concurrentTotal: this.#activeMigrations,
      },
    });
    try {
      await this.#sleep(this.timings.migrationOverheadMs);
      await this.#links.transfer(source.ref, source.nicBytesPerSecond / this.timings.bandwidthScale, needed);
      if (this.#stopped)
        throw new XapiFault(['VM_MIGRATE_FAILED', vm.ref, source.ref, destination.ref, 'lab stopped']);
      if (!isUp(source) || !isUp(destination)) {
        throw new XapiFault([
          'VM_MIGRATE_FAILED',
          vm.ref,
          source.ref,
          destination.ref,
          'Host went down during migration',
        ]);
      }
      const failuresLeft = this.#migrationFailures.get(vm.name) ?? 0;
      if (failuresLeft > 0) {
        this.#migrationFailures.set(vm.name, failuresLeft - 1);
        throw new XapiFault([
          'VM_MIGRATE_FAILED',
          vm.ref,
          source.ref,
          destination.ref,
          'Lab: injected migration failure',
        ]);
      }
      vm.residentOn = destination.ref;
      this.log.record({
        kind: 'vm.migrated',
        vm: vm.name,
        host: source.name,
        detail: { to: destination.name, ms: Date.now() - startedAt },
      });
    } catch (error) {
      const description =
        error instanceof XapiFault ? error.errorDescription : ['INTERNAL_ERROR', String(error)];
      this.log.record({
        kind: 'vm.migration_failed',
        vm: vm.name,
        host: source.name,
        detail: { to: destination.name, error: description },
      });
      throw error;
    } finally {
      vm.migratingTo = undefined;
      vm.migrationTask = undefined;
      this.#activeMigrations--;
      this.#activeBySource.set(source.ref, (this.#activeBySource.get(source.ref) ?? 1) - 1);
    }
  }

  // ---- pool operations -------------------------------------------------------------------

  disableHa(): void {
    if (!this.pool.haEnabled) throw new XapiFault(['HA_NOT_ENABLED']);
    this.pool.haEnabled = false;
    this.pool.haStatefiles = [];
    this.pool.haConfiguration = {};
    this.log.record({ kind: 'pool.ha_disabled' });
  }

  enableHa(heartbeatSrs: string[], configuration: Record<string, string>): void {
    if (this.pool.haEnabled) throw new XapiFault(['HA_IS_ENABLED']);
    if (heartbeatSrs.length === 0) throw new XapiFault(['HA_NO_PLAN']);
    const statefiles: string[] = [];
    for (const srRef of heartbeatSrs) {
      const sr = this.srs.get(srRef);
      if (!sr) throw new XapiFault(['HANDLE_INVALID', 'SR', srRef]);
      if (!sr.shared) throw new XapiFault(['HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED', srRef]);
      statefiles.push(
        this.#addVdi({ name: 'Statefile for HA', sr: sr.ref, type: 'ha_statefile', size: 4 * MiB }).ref,
      );
    }
    this.pool.haEnabled = true;
    this.pool.haStatefiles = statefiles;
    this.pool.haConfiguration = { ...configuration };
    this.log.record({ kind: 'pool.ha_enabled', detail: { srs: heartbeatSrs, configuration } });
  }

  setPoolOtherConfig(key: string, value: string | undefined): void {
    const before = this.pool.otherConfig[key];
    if (value === undefined) delete this.pool.otherConfig[key];
    else this.pool.otherConfig[key] = value;
    this.log.record({ kind: 'pool.other_config', detail: { key, from: before, to: value } });
  }

  // ---- faults ----------------------------------------------------------------------------

  failMigration(vmName: string, times: number): void {
    this.vmByName(vmName);
    this.#migrationFailures.set(vmName, times);
  }

  hostNeverComesBack(hostName: string): void {
    this.#faultsOf(this.hostByName(hostName)).neverComesBack = true;
  }

  xapiNeverComesBack(hostName: string): void {
    this.#faultsOf(this.hostByName(hostName)).xapiNeverComesBack = true;
  }

  slowReboot(hostName: string, extraMs: number): void {
    this.#faultsOf(this.hostByName(hostName)).extraBootMs = extraMs;
  }

  /** Starts a new running VM on a host, as someone outside the bot might (uses its memory). */
  startVm(hostName: string, name: string, memoryBytes: number): LabVm {
    const host = this.hostByName(hostName);
    const vm = this.#addVm(
      { name, memoryBytes, host: this.hosts.indexOf(host) },
      'Running',
      this.pool.defaultSr,
    );
    this.log.record({ kind: 'vm.started', vm: vm.name, host: host.name, detail: { by: 'outside' } });
    return vm;
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const wake of this.#sleepers) wake();
    this.#sleepers.clear();
    this.#links.stop();
  }

  // ---- internals -------------------------------------------------------------------------

  #goDown(host: LabHost): void {
    const leftovers = this.residentGuests(host.ref);
    this.log.record({
      kind: 'host.went_down',
      host: host.name,
      detail: { residentGuestVms: leftovers.map((vm) => vm.name), wasMaster: host.ref === this.pool.master },
    });
    // Real xapi shuts down whatever is still running when a host reboots: that is downtime.
    for (const vm of leftovers) {
      vm.powerState = 'Halted';
      vm.residentOn = NULL_REF;
      this.log.record({
        kind: 'vm.lost',
        vm: vm.name,
        host: host.name,
        detail: { reason: 'host rebooted with VM running' },
      });
    }
    host.rebootCount++;
    this.#setPower(host, 'down');
    this.#setLive(host, false);
    const faults = this.#faultsOf(host);
    if (faults.neverComesBack) return;
    this.#after(this.timings.bootMs + faults.extraBootMs, () => {
      host.bootId = randomUUID();
      host.bootTime = Date.now() / 1000;
      this.log.record({ kind: 'host.ssh_up', host: host.name });
      this.#setPower(host, 'booting');
      if (faults.xapiNeverComesBack) return;
      this.#after(this.timings.xapiStartMs, () => this.#comeUp(host));
    });
  }

  #comeUp(host: LabHost): void {
    host.agentStartTime = Date.now() / 1000;
    host.xapiStartedAt = Date.now();
    // xapi re-enables a host at start-up when it was disabled only until reboot.
    host.enabled = true;
    this.#setLive(host, true);
    this.log.record({ kind: 'host.came_up', host: host.name, detail: { enabled: true } });
    this.#setPower(host, 'up');
    if (this.pool.otherConfig.auto_poweron === 'true') this.#autoPowerOn(host);
  }

  /** What `xapi-autostart-vms` does at boot: start halted auto-power-on VMs, here on the booted host. */
  #autoPowerOn(host: LabHost): void {
    for (const vm of this.guestVms()) {
      if (vm.powerState !== 'Halted' || vm.otherConfig.auto_poweron !== 'true') continue;
      if (this.vmFootprint(vm) > this.freeMemory(host.ref)) continue;
      vm.powerState = 'Running';
      vm.residentOn = host.ref;
      this.log.record({ kind: 'vm.started', vm: vm.name, host: host.name, detail: { by: 'auto_poweron' } });
    }
  }

  #setPower(host: LabHost, power: HostPower): void {
    host.power = power;
    for (const listener of this.#powerListeners) listener(host, power);
  }

  #setLive(host: LabHost, live: boolean): void {
    host.live = live;
    host.liveChangedAt = Date.now();
  }

  #localDiskSr(vm: LabVm): string | undefined {
    for (const vbdRef of vm.vbds) {
      const vbd = this.vbds.get(vbdRef);
      if (!vbd || vbd.empty) continue;
      const vdi = this.vdis.get(vbd.vdi);
      const sr = vdi && this.srs.get(vdi.sr);
      if (sr && !sr.shared) return sr.ref;
    }
    return undefined;
  }

  #addSr(input: { name: string; type: string; shared: boolean; contentType: string }): LabSr {
    const sr: LabSr = { ref: ref(), uuid: randomUUID(), ...input };
    this.srs.set(sr.ref, sr);
    return sr;
  }

  #addVdi(input: { name: string; sr: string; type: string; size: number }): LabVdi {
    const vdi: LabVdi = {
      ref: ref(),
      uuid: randomUUID(),
      name: input.name,
      sr: input.sr,
      type: input.type,
      virtualSize: input.size,
    };
    this.vdis.set(vdi.ref, vdi);
    return vdi;
  }

  #addVm(spec: VmSpec, powerState: 'Running' | 'Halted', sharedSr: string): LabVm {
    const host = this.hosts[spec.host];
    if (!host) throw new Error(`VM ${spec.name}: no host #${spec.host}`);
    const vm: LabVm = {
      ref: ref(),
      uuid: randomUUID(),
      name: spec.name,
      memoryStaticMax: spec.memoryBytes,
      // Like xapi, a VM needs a little memory beyond its own for page tables and device models.
      memoryOverhead: Math.ceil(spec.memoryBytes / 128 / MiB) * MiB,
      powerState,
      residentOn: powerState === 'Running' ? host.ref : NULL_REF,
      isControlDomain: false,
      isTemplate: false,
      vbds: [],
      haRestartPriority: spec.haRestartPriority ?? 'restart',
      otherConfig: {},
    };
    const diskSr = spec.onLocalSr ? host.localSrRef : sharedSr;
    const disk = this.#addVdi({ name: `${spec.name} disk`, sr: diskSr, type: 'user', size: 20 * 1024 * MiB });
    const diskVbd = this.#addVbd(vm, disk.ref, 'Disk', '0');
    const isoSr = [...this.srs.values()].find((sr) => sr.type === 'iso');
    const iso =
      spec.cdInserted && isoSr
        ? this.#addVdi({ name: 'install.iso', sr: isoSr.ref, type: 'user', size: 700 * MiB })
        : undefined;
    const cdVbd = this.#addVbd(vm, iso?.ref ?? NULL_REF, 'CD', '3');
    vm.vbds = [diskVbd.ref, cdVbd.ref];
    this.vms.set(vm.ref, vm);
    return vm;
  }

  #addTemplate(sharedSr: string): void {
    const template = this.#addVm(
      { name: 'Debian Bookworm 12 (template)', memoryBytes: 2048 * MiB, host: 0 },
      'Halted',
      sharedSr,
    );
    template.isTemplate = true;
  }

  #addVbd(vm: LabVm, vdi: string, type: 'Disk' | 'CD', userdevice: string): LabVbd {
    const vbd: LabVbd = {
      ref: ref(),
      uuid: randomUUID(),
      vm: vm.ref,
      vdi,
      type,
      empty: vdi === NULL_REF,
      userdevice,
    };
    this.vbds.set(vbd.ref, vbd);
    return vbd;
  }

  #faultsOf(host: LabHost): HostFaults {
    let faults = this.#hostFaults.get(host.ref);
    if (!faults) {
      faults = { neverComesBack: false, xapiNeverComesBack: false, extraBootMs: 0 };
      this.#hostFaults.set(host.ref, faults);
    }
    return faults;
  }

  #host(hostRef: string): LabHost {
    const host = this.hostByRef(hostRef);
    if (!host) throw new XapiFault(['HANDLE_INVALID', 'host', hostRef]);
    return host;
  }

  #existingHost(hostRef: string): LabHost {
    return this.#host(hostRef);
  }

  #after(ms: number, action: () => void): void {
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#stopped) action();
    }, ms);
    this.#timers.add(timer);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (ms <= 0 || this.#stopped) return resolve();
      const wake = () => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleepers.add(wake);
    });
  }
}
