/**
 * The rolling reboot itself (DESIGN.md section 2, "Execution"): prepare the cluster, then for each
 * host in order empty it, reboot it, wait for it and re-enable it, then restore the cluster. A
 * checkpoint is saved after every state change, before the next mutating call, so a crash at any
 * point resumes without rebooting a host twice or forgetting what to put back.
 */
import { randomUUID } from 'node:crypto';
import { describeError, LockLostError, XapiError } from '../errors.js';
import type { Checkpoint, HostProgress } from './checkpoint.js';
import { evacuate } from './evacuation.js';
import type { HookDefinition } from './hooks.js';
import { waitUntilBack, waitUntilDown } from './host-waits.js';
import {
  AbortedError,
  errorDetail,
  NeedsAttentionError,
  type RunOutcome,
  StopSafelyError,
} from './outcome.js';
import { planHostEvacuation } from './planner.js';
import { guestsOn, type HypervisorPool, type PoolState, readPoolState, toSnapshot } from './pool-state.js';
import type { EngineDeps, RunControl, RunRequest } from './ports.js';
import type { PreflightResult } from './preflight.js';
import { pollUntil, sleep } from './waits.js';

const EVACUATION_PASSES = 3;

export function initialCheckpoint(
  request: RunRequest,
  preflight: Required<Pick<PreflightResult, 'cluster' | 'state' | 'plan'>>,
): Checkpoint {
  const { cluster, state, plan } = preflight;
  const hosts: Record<string, HostProgress> = {};
  for (const uuid of plan.order)
    hosts[uuid] = { name: state.hostByUuid.get(uuid)?.nameLabel ?? uuid, status: 'pending' };
  return {
    version: 1,
    runId: randomUUID(),
    cluster: { name: request.cluster, id: cluster.id },
    startedAt: new Date().toISOString(),
    phase: 'preparing',
    saved: {
      haEnabled: state.pool.haEnabled,
      haHeartbeatSrUuids: [],
      haConfiguration: { ...state.pool.haConfiguration },
      autoPoweron: state.pool.otherConfig.auto_poweron,
      managedState: cluster.managedState,
      placement: Object.fromEntries(
        state.guests.map((vm) => [vm.uuid, state.hostByRef.get(vm.residentOn)?.uuid ?? vm.residentOn]),
      ),
    },
    changed: { unmanaged: false, haDisabled: false, autoPoweronDisabled: false },
    order: plan.order,
    hosts,
    migrations: 0,
    attention: [],
    abortRequested: false,
  };
}

/** The heartbeat SRs (by UUID) behind the pool's HA statefile VDIs, so HA can be restored on the same SRs. */
export async function heartbeatSrUuids(xapi: HypervisorPool, statefiles: string[]): Promise<string[]> {
  if (statefiles.length === 0) return [];
  const [vdis, srs] = await Promise.all([xapi.getVdis(), xapi.getSrs()]);
  const srUuid = new Map(srs.map((sr) => [sr.ref, sr.uuid]));
  return statefiles.map((vdiRef) => {
    const vdi = vdis.find((v) => v.ref === vdiRef);
    const uuid = vdi && srUuid.get(vdi.sr);
    if (!uuid)
      throw new StopSafelyError(`HA statefile ${vdiRef} has no SR: HA could not be restored as it was`, [
        'HA_NO_STATEFILE',
        vdiRef,
      ]);
    return uuid;
  });
}

export class RollingReboot {
  readonly #xapi: HypervisorPool;
  readonly #addressOf = new Map<string, string>();
  #abortAnnounced = false;
  #currentHost: string | undefined;

  constructor(
    readonly deps: EngineDeps,
    readonly request: RunRequest,
    readonly control: RunControl,
    readonly checkpoint: Checkpoint,
    preflight: PreflightResult,
    readonly resumed: boolean,
  ) {
    if (!preflight.connection || !preflight.state) throw new Error('pre-flight did not connect to the pool');
    this.#xapi = preflight.connection.pool;
    for (const host of preflight.state.hosts) this.#addressOf.set(host.uuid, host.address);
  }

  async run(): Promise<RunOutcome> {
    const cp = this.checkpoint;
    const startedAt = Date.now();
    this.deps.emit({
      type: 'run_started',
      runId: cp.runId,
      resumed: this.resumed,
      threads: this.request.threads,
    });
    try {
      if (cp.phase === 'preparing') await this.#prepareCluster();
      if (cp.phase === 'rebooting' || cp.phase === 'needs_attention') {
        // Resuming a halted run is the human's answer to the halt: its reasons need no one any more
        // (a new halt records its own), so a run that then finishes cleanly exits 0.
        if (cp.phase === 'needs_attention') cp.attention = [];
        cp.phase = 'rebooting';
        await this.#save();
        const total = cp.order.length;
        for (const [index, uuid] of cp.order.entries()) {
          const progress = this.#progress(uuid);
          if (progress.status === 'done') continue;
          if (progress.status === 'pending') {
            if (this.#abortRequested()) return await this.#abort();
            if (this.control.suspendRequested?.()) return await this.#suspend(progress.name);
            if (index > 0 && this.control.waitBeforeHost) {
              this.deps.emit({ type: 'paused', nextHost: progress.name });
              await this.control.waitBeforeHost(progress.name);
              if (this.#abortRequested()) return await this.#abort();
              if (this.control.suspendRequested?.()) return await this.#suspend(progress.name);
              this.deps.emit({ type: 'continued', nextHost: progress.name });
            }
            await this.control.beforeHost?.(progress.name);
          }
          await this.#rebootHost(uuid, index, total);
        }
        // An abort asked for during the last host's reboot changes nothing now: every host is done.
        cp.phase = 'restoring';
        await this.#save();
      }
      if (cp.phase === 'restoring') {
        await this.#restoreAfterLastHost();
        if (this.request.restorePlacement) {
          cp.phase = 'restoring_placement';
          await this.#save();
        }
      }
      if (cp.phase === 'restoring_placement') await this.#restorePlacement();
      await this.deps.checkpoints.clear(cp.cluster.name);
      this.deps.emit({
        type: 'finished',
        seconds: Math.round((Date.now() - startedAt) / 1000),
        migrations: cp.migrations,
        hosts: cp.order.map((uuid) => ({
          host: this.#progress(uuid).name,
          seconds: this.#progress(uuid).seconds ?? 0,
        })),
        attention: cp.attention,
      });
      return { status: 'done', attention: cp.attention };
    } catch (error) {
      return await this.#handleFailure(error);
    }
  }

  // ---- preparing and restoring the cluster ------------------------------------------------

  async #prepareCluster(): Promise<void> {
    const cp = this.checkpoint;
    const pool = await this.#xapi.getPool();
    if (cp.saved.haEnabled && cp.saved.haHeartbeatSrUuids.length === 0) {
      cp.saved.haHeartbeatSrUuids = await heartbeatSrUuids(this.#xapi, pool.haStatefiles);
      await this.#save();
    }
    if (cp.saved.managedState === 'Managed' && !cp.changed.unmanaged) {
      cp.changed.unmanaged = true;
      await this.#save();
      await this.deps.cloud.updateCluster({ id: cp.cluster.id, managedState: 'Unmanaged' });
      await this.#waitForManagedState('Unmanaged');
      this.deps.emit({ type: 'cluster_unmanaged', cluster: cp.cluster.name });
    }
    if (cp.saved.haEnabled && !cp.changed.haDisabled) {
      cp.changed.haDisabled = true;
      await this.#save();
      await ignoreXapiCode(this.#xapi.disableHa(), 'HA_NOT_ENABLED');
      this.deps.emit({
        type: 'ha_disabled',
        heartbeatSrs: cp.saved.haHeartbeatSrUuids,
        configuration: cp.saved.haConfiguration,
      });
    }
    if (cp.saved.autoPoweron === 'true' && !cp.changed.autoPoweronDisabled) {
      cp.changed.autoPoweronDisabled = true;
      await this.#save();
      await this.#xapi.setPoolOtherConfigKey(pool.ref, 'auto_poweron', 'false');
      this.deps.emit({ type: 'auto_poweron_disabled' });
    }
    cp.phase = 'rebooting';
    await this.#save();
  }

  /**
   * Puts back HA, auto_poweron and the managed state. Each is attempted even when another fails, so
   * one stuck item never leaves the others changed; the failures are reported together.
   */
  async #restoreCluster(): Promise<void> {
    const cp = this.checkpoint;
    // Fenced: a worker that lost this cluster to another must not restore under the new one's feet.
    await this.#save();
    const failures: string[] = [];
    const attempt = async (what: string, action: () => Promise<void>) => {
      try {
        await action();
      } catch (error) {
        if (error instanceof LockLostError) throw error;
        failures.push(`${what}: ${describeError(error)}`);
      }
    };
    if (cp.changed.haDisabled) {
      await attempt('pool HA', async () => {
        this.deps.emit({ type: 'restoring', what: 'pool HA' });
        const srs = await this.#xapi.getSrs();
        const refs = cp.saved.haHeartbeatSrUuids.map((uuid) => {
          const sr = srs.find((s) => s.uuid === uuid);
          if (!sr) throw new Error(`heartbeat SR ${uuid} is gone: HA cannot be restored as it was`);
          return sr.ref;
        });
        await ignoreXapiCode(this.#xapi.enableHa(refs, cp.saved.haConfiguration), 'HA_IS_ENABLED');
        cp.changed.haDisabled = false;
        await this.#save();
        this.deps.emit({ type: 'ha_restored', heartbeatSrs: cp.saved.haHeartbeatSrUuids });
      });
    }
    if (cp.changed.autoPoweronDisabled) {
      await attempt('pool auto_poweron', async () => {
        this.deps.emit({ type: 'restoring', what: 'pool auto_poweron' });
        const pool = await this.#xapi.getPool();
        await this.#xapi.setPoolOtherConfigKey(pool.ref, 'auto_poweron', cp.saved.autoPoweron);
        cp.changed.autoPoweronDisabled = false;
        await this.#save();
        this.deps.emit({ type: 'auto_poweron_restored' });
      });
    }
    if (cp.changed.unmanaged) {
      await attempt('CloudStack managed state', async () => {
        this.deps.emit({ type: 'restoring', what: 'CloudStack managed state' });
        await this.deps.cloud.updateCluster({ id: cp.cluster.id, managedState: 'Managed' });
        await this.#waitForManagedState('Managed');
        cp.changed.unmanaged = false;
        await this.#save();
        let hostsUp = 0;
        try {
          hostsUp = await this.#waitForCloudHostsUp();
        } catch (error) {
          const note = `CloudStack hosts of ${cp.cluster.name} are not all Up again: ${describeError(error)}. Check the management server's agent connections`;
          cp.attention.push(note);
          await this.#save();
          this.deps.emit({ type: 'warning', message: note });
        }
        this.deps.emit({ type: 'cluster_managed', cluster: cp.cluster.name, hostsUp });
      });
    }
    if (failures.length > 0)
      throw new StopSafelyError(`could not restore ${failures.join('; ')}`, ['RESTORE_FAILED', ...failures]);
  }

  /**
   * Every host is done: a restore that fails (a CloudStack 5xx, a timeout) is tried once more before
   * a human is called, so a passing hiccup does not turn a finished reboot into a failed run.
   */
  async #restoreAfterLastHost(): Promise<void> {
    try {
      await this.#restoreCluster();
    } catch (error) {
      if (error instanceof LockLostError || this.control.hardStop?.aborted) throw error;
      this.deps.emit({ type: 'warning', message: `${describeError(error)}; trying once more` });
      await this.#restoreCluster();
    }
  }

  async #waitForManagedState(wanted: 'Managed' | 'Unmanaged'): Promise<void> {
    await pollUntil(
      async () => {
        const [cluster] = await this.deps.cloud.listClusters({ id: this.checkpoint.cluster.id });
        return cluster?.managedState === wanted ? true : undefined;
      },
      {
        what: `CloudStack to show ${this.checkpoint.cluster.name} as ${wanted}`,
        timeoutMs: this.deps.timings.cloudstackWaitTimeoutMs,
        intervalMs: this.deps.timings.pollIntervalMs,
      },
    );
  }

  async #waitForCloudHostsUp(): Promise<number> {
    return pollUntil(
      async () => {
        const hosts = await this.deps.cloud.listHosts({ clusterId: this.checkpoint.cluster.id });
        return hosts.length > 0 && hosts.every((h) => h.state === 'Up') ? hosts.length : undefined;
      },
      {
        what: 'CloudStack to show every host of the cluster Up',
        timeoutMs: this.deps.timings.cloudstackWaitTimeoutMs,
        intervalMs: this.deps.timings.pollIntervalMs,
      },
    );
  }

  // ---- one host ------------------------------------------------------------------------------

  async #rebootHost(uuid: string, index: number, total: number): Promise<void> {
    const progress = this.#progress(uuid);
    this.#currentHost = uuid;
    const startedAt = Date.now();
    let state = await readPoolState(this.#xapi);
    const host = state.hostByUuid.get(uuid);
    if (!host)
      throw new StopSafelyError(`${progress.name} is no longer in the pool`, ['HOST_GONE', progress.name]);
    const address = this.#addressOf.get(uuid) ?? host.address;
    this.deps.emit({
      type: 'host_started',
      host: progress.name,
      index: index + 1,
      total,
      vms: guestsOn(state, host.ref).length,
    });
    let migrations = 0;

    if (progress.status === 'pending') await this.#assertCanEvacuate(state, uuid);
    if (progress.status === 'pending' || progress.status === 'disabled') {
      const fresh = progress.status === 'pending';
      // Saved first: a crash right after host.disable must resume this host, not find it disabled by "someone else".
      progress.status = 'disabled';
      await this.#save();
      await this.#xapi.disableHost(host.ref);
      this.deps.emit({ type: 'host_disabled', host: progress.name });
      if (fresh) await this.#runHook(this.request.preEmptyHook, 'pre-empty', progress.name, address);
      migrations = await this.#emptyHost(uuid);
      state = await readPoolState(this.#xapi);
      this.deps.emit({
        type: 'host_empty',
        host: progress.name,
        seconds: Math.round((Date.now() - startedAt) / 1000),
      });
      await this.#runHook(this.request.postEmptyHook, 'post-empty', progress.name, address);
      progress.status = 'empty';
      await this.#save();
    }

    if (progress.status === 'empty') {
      // I1: never reboot a host with a guest on it, whatever happened since it was emptied.
      // Paused or suspended-but-resident VMs count too: a reboot would destroy them.
      state = await readPoolState(this.#xapi);
      const leftovers = residentNonDom0(state, host.ref);
      if (leftovers.length > 0) {
        throw new StopSafelyError(
          `${progress.name} is not empty before its reboot: ${leftovers.map((vm) => vm.nameLabel).join(', ')}`,
          ['HOST_NOT_EMPTY', progress.name],
        );
      }
      const { bootId } = await this.deps.shell.probe(address);
      progress.bootIdBefore = bootId;
      progress.agentStartTimeBefore = (await this.#xapi.getHost(host.ref)).agentStartTime;
      progress.status = 'rebooting';
      progress.rebootRequestedAt = new Date().toISOString();
      await this.#save();
      try {
        await this.#xapi.rebootHost(host.ref);
      } catch (error) {
        // XAPI answered: the reboot did not happen. Back to "empty" so the host is re-enabled and
        // the cluster restored, instead of waiting for a reboot that was never sent.
        if (error instanceof XapiError) {
          progress.status = 'empty';
          await this.#save();
        }
        throw error;
      }
      this.deps.emit({ type: 'host_rebooting', host: progress.name });
    }

    if (progress.status === 'rebooting') {
      const rebooting = {
        name: progress.name,
        ref: host.ref,
        metricsRef: host.metrics,
        address,
        bootIdBefore: progress.bootIdBefore,
        agentStartTimeBefore: progress.agentStartTimeBefore,
      };
      const waitStarted = Date.now();
      this.#announceAbortIfRequested();
      await waitUntilDown(rebooting, this.deps.shell, this.deps.timings, this.control.hardStop);
      this.deps.emit({ type: 'host_down', host: progress.name, seconds: secondsSince(waitStarted) });
      await waitUntilBack(rebooting, this.#xapi, this.deps.shell, this.deps.timings, this.control.hardStop);
      this.deps.emit({ type: 'host_up', host: progress.name, seconds: secondsSince(waitStarted) });
      await this.#enableHost(host.ref, progress.name);
      progress.status = 'done';
      progress.seconds = secondsSince(startedAt);
      await this.#save();
      this.deps.emit({
        type: 'host_done',
        host: progress.name,
        seconds: progress.seconds,
        migrations,
        index: index + 1,
        total,
      });
    }
    this.#currentHost = undefined;
  }

  /**
   * The pool changes between hosts: before touching this one, check with XAPI that nothing pins a VM
   * to it and that its VMs fit elsewhere now, so a refusal leaves the host untouched and enabled.
   */
  async #assertCanEvacuate(state: PoolState, uuid: string): Promise<void> {
    const host = state.hostByUuid.get(uuid);
    if (!host) return;
    // I2: another host already out of service (crashed, or disabled by someone) means this one stays in.
    const outOfService = state.hosts.filter((h) => h.uuid !== uuid && (!h.enabled || !state.isLive(h)));
    if (outOfService.length > 0) {
      const names = outOfService
        .map((h) => `${h.nameLabel} (${h.enabled ? 'not live' : 'disabled'})`)
        .join(', ');
      throw new StopSafelyError(
        `not taking ${host.nameLabel} out of service while ${names} is out of service too`,
        ['HOST_OUT_OF_SERVICE', ...outOfService.map((h) => h.nameLabel)],
      );
    }
    const pinned = residentNonDom0(state, host.ref).filter((vm) => vm.powerState !== 'Running');
    if (pinned.length > 0) {
      throw new StopSafelyError(
        `${host.nameLabel} has VMs that are not running and cannot live-migrate: ${pinned.map((vm) => `${vm.nameLabel} (${vm.powerState})`).join(', ')}`,
        ['VM_BAD_POWER_STATE', ...pinned.map((vm) => vm.nameLabel)],
      );
    }
    const reported = await this.#xapi.getVmsWhichPreventEvacuation(host.ref);
    const blockers = [...reported].map(([vmRef, reason]) => ({
      vmUuid: state.allVms.find((vm) => vm.ref === vmRef)?.uuid ?? vmRef,
      reason,
    }));
    const snapshot = toSnapshot(state, {
      ignoredHostUuids: this.#ignoredHostUuids(state),
      doneHostUuids: [],
      blockers,
    });
    const planned = planHostEvacuation(snapshot, uuid, this.#rebootedHosts());
    if (!planned.ok) {
      throw new StopSafelyError(`cannot empty ${host.nameLabel}: ${planned.refusal.message}`, [
        'PLAN_REFUSED',
        planned.refusal.message,
      ]);
    }
  }

  /** Live-migrates every guest off the host, re-planning from live state on each pass. */
  async #emptyHost(uuid: string): Promise<number> {
    const cp = this.checkpoint;
    let moved = 0;
    let busyUntil: number | undefined;
    for (let pass = 1; pass <= EVACUATION_PASSES; ) {
      // Fenced: a worker that lost this cluster must not start migrations on it.
      await this.#save();
      const state = await readPoolState(this.#xapi);
      const host = state.hostByUuid.get(uuid);
      if (!host) throw new StopSafelyError(`host ${uuid} vanished from the pool`, ['HOST_GONE', uuid]);
      if (guestsOn(state, host.ref).length === 0) return moved;
      if (this.#abortRequested()) throw new AbortedError(`abort requested while emptying ${host.nameLabel}`);
      const preferred = this.#rebootedHosts();
      const snapshot = toSnapshot(state, {
        ignoredHostUuids: this.#ignoredHostUuids(state),
        doneHostUuids: [],
        blockers: [],
      });
      const planned = planHostEvacuation(snapshot, uuid, preferred);
      if (!planned.ok) {
        throw new StopSafelyError(`cannot empty ${host.nameLabel}: ${planned.refusal.message}`, [
          'PLAN_REFUSED',
          planned.refusal.message,
        ]);
      }
      const report = await evacuate(
        {
          xapi: this.#xapi,
          state,
          threads: this.request.threads,
          migrationTimeoutMs: this.deps.timings.migrationTimeoutMs,
          candidateDestinations: this.#destinationPreference(state, uuid),
          abortRequested: () => this.#abortRequested(),
          emit: (event) => this.deps.emit(event),
          signal: this.control.hardStop,
        },
        planned.step.migrations,
      );
      moved += report.moved;
      cp.migrations += report.moved;
      await this.#save();
      const [failure] = report.failures;
      if (failure) {
        throw new StopSafelyError(
          `could not empty ${host.nameLabel}: ${failure.vm} failed to migrate twice: ${failure.error.join(' ')}`,
          failure.error,
        );
      }
      if (report.skippedForAbort > 0 || this.#abortRequested()) {
        throw new AbortedError(`abort requested while emptying ${host.nameLabel}`);
      }
      if (report.busy.length === 0) {
        pass++;
        continue;
      }
      // Busy VMs are in another operation, typically a migration a stopped run left going: wait for
      // it to end (bounded like a migration), then re-plan from live state without using up a pass.
      busyUntil ??= Date.now() + this.deps.timings.migrationTimeoutMs;
      if (Date.now() >= busyUntil) {
        throw new StopSafelyError(
          `could not empty ${host.nameLabel}: ${report.busy.join(', ')} stayed busy with another operation`,
          ['OTHER_OPERATION_IN_PROGRESS', ...report.busy],
        );
      }
      await sleep(this.deps.timings.pollIntervalMs, this.control.hardStop);
      if (this.control.hardStop?.aborted) throw new AbortedError(`stopped while emptying ${host.nameLabel}`);
    }
    const state = await readPoolState(this.#xapi);
    const host = state.hostByUuid.get(uuid);
    const left = host ? guestsOn(state, host.ref) : [];
    if (left.length > 0) {
      throw new StopSafelyError(
        `${host?.nameLabel} still runs ${left.map((vm) => vm.nameLabel).join(', ')} after ${EVACUATION_PASSES} passes`,
        ['HOST_NOT_EMPTY', host?.nameLabel ?? uuid],
      );
    }
    return moved;
  }

  async #enableHost(ref: string, name: string): Promise<void> {
    await pollUntil(
      async () => {
        try {
          await this.#xapi.enableHost(ref);
        } catch (error) {
          if (error instanceof XapiError && error.xapiCode === 'HOST_STILL_BOOTING') return undefined;
          throw error;
        }
        const record = await this.#xapi.getHost(ref);
        return record.enabled ? true : undefined;
      },
      {
        what: `${name} to be enabled`,
        timeoutMs: this.deps.timings.hostRebootTimeoutMs,
        intervalMs: this.deps.timings.pollIntervalMs,
        isFatal: (error) => error instanceof XapiError && error.xapiCode !== 'HOST_STILL_BOOTING',
        signal: this.control.hardStop,
      },
    ).catch((error: unknown) => {
      throw new NeedsAttentionError(
        name,
        `${name} is back but could not be enabled: ${describeError(error)}`,
        { cause: error },
      );
    });
    this.deps.emit({ type: 'host_enabled', host: name });
  }

  async #runHook(
    hook: HookDefinition | undefined,
    phase: 'pre-empty' | 'post-empty',
    host: string,
    address: string,
  ): Promise<void> {
    if (!hook) return;
    this.deps.emit({ type: 'hook_started', host, hook: hook.name, phase });
    const startedAt = Date.now();
    let result: { exitCode: number | null; output: string };
    try {
      const run = await this.deps.shell.run(address, hook.command, hook.timeoutMs);
      result = { exitCode: run.exitCode, output: `${run.stdout}${run.stderr}`.trim() };
    } catch (error) {
      result = { exitCode: null, output: describeError(error) };
    }
    this.deps.emit({
      type: 'hook_finished',
      host,
      hook: hook.name,
      phase,
      ...result,
      seconds: secondsSince(startedAt),
    });
    if (result.exitCode !== 0) {
      throw new StopSafelyError(
        `the ${phase} hook ${hook.name} failed on ${host} (exit ${result.exitCode ?? 'none'})`,
        ['HOOK_FAILED', hook.name, String(result.exitCode), result.output.slice(-500)],
      );
    }
  }

  // ---- placement -----------------------------------------------------------------------------

  async #restorePlacement(): Promise<void> {
    const cp = this.checkpoint;
    const reverse = [...cp.order].reverse();
    const notMoved = new Map<string, { vm: string; home: string; reason: string }>();
    let moved = 0;
    for (let pass = 1; pass <= 5; pass++) {
      let progressThisPass = 0;
      const state = await readPoolState(this.#xapi);
      for (const homeUuid of reverse) {
        const home = state.hostByUuid.get(homeUuid);
        if (!home) continue;
        const away = state.guests.filter(
          (vm) => cp.saved.placement[vm.uuid] === homeUuid && vm.residentOn !== home.ref,
        );
        const migrations = away.map((vm) => ({
          vmId: vm.uuid,
          vmName: vm.nameLabel,
          memory: state.footprint(vm),
          from: state.hostByRef.get(vm.residentOn)?.uuid ?? vm.residentOn,
          to: homeUuid,
        }));
        for (const migration of migrations) {
          try {
            const vm = state.vmByUuid.get(migration.vmId);
            if (!vm) continue;
            this.deps.emit({
              type: 'migration_started',
              vm: migration.vmName,
              from: nameOr(state, migration.from),
              to: home.nameLabel,
              memory: migration.memory,
              attempt: pass,
            });
            const startedAt = Date.now();
            await this.#xapi.poolMigrate(vm.ref, home.ref, {
              timeoutMs: this.deps.timings.migrationTimeoutMs,
              signal: this.control.hardStop,
            });
            this.deps.emit({
              type: 'migration_finished',
              vm: migration.vmName,
              from: nameOr(state, migration.from),
              to: home.nameLabel,
              seconds: secondsSince(startedAt),
              attempt: pass,
            });
            notMoved.delete(migration.vmId);
            moved++;
            progressThisPass++;
            cp.migrations++;
          } catch (error) {
            notMoved.set(migration.vmId, {
              vm: migration.vmName,
              home: home.nameLabel,
              reason: errorDetail(error).join(' '),
            });
          }
        }
      }
      await this.#save();
      if (progressThisPass === 0) break;
    }
    this.deps.emit({ type: 'placement_restored', moved, notMoved: [...notMoved.values()] });
    for (const item of notMoved.values())
      cp.attention.push(`${item.vm} could not go back to ${item.home}: ${item.reason}`);
  }

  // ---- endings -------------------------------------------------------------------------------

  async #abort(): Promise<RunOutcome> {
    const cp = this.checkpoint;
    await this.#reenableCurrentHost();
    await this.#restoreCluster();
    await this.deps.checkpoints.clear(cp.cluster.name);
    this.deps.emit({ type: 'aborted', leftChanged: [], hostsDone: this.#doneHostNames() });
    return { status: 'aborted' };
  }

  async #suspend(nextHost: string): Promise<RunOutcome> {
    await this.#save();
    this.deps.emit({ type: 'suspended', nextHost });
    return { status: 'suspended', nextHost };
  }

  async #handleFailure(error: unknown): Promise<RunOutcome> {
    const cp = this.checkpoint;
    if (error instanceof LockLostError) {
      // Another worker owns this cluster now and continues from the checkpoint: touch nothing more.
      const leftChanged = this.leftChanged();
      this.deps.emit({
        type: 'needs_attention',
        host: this.#currentName(),
        reason: error.message,
        leftChanged,
      });
      return { status: 'stopped', leftChanged };
    }
    if (this.control.hardStop?.aborted) {
      // A hard stop supersedes the abort before it: running the command again resumes, as promised below.
      cp.abortRequested = false;
      await this.#save().catch(() => undefined);
      const leftChanged = this.leftChanged();
      const why = this.control.hardStop.reason;
      this.deps.emit({
        type: 'needs_attention',
        host: this.#currentName(),
        reason:
          why instanceof LockLostError ? `stopped at once: ${why.message}` : 'stopped at once (hard stop)',
        leftChanged,
      });
      return { status: 'stopped', leftChanged };
    }
    if (error instanceof AbortedError) {
      try {
        return await this.#abort();
      } catch (restoreError) {
        return this.#needsAttention(
          this.#currentName(),
          `abort could not restore the cluster: ${describeError(restoreError)}`,
        );
      }
    }
    if (error instanceof NeedsAttentionError) return this.#needsAttention(error.host, error.message);
    const progress = this.#currentHost ? this.#progress(this.#currentHost) : undefined;
    if (progress?.status === 'rebooting') {
      return this.#needsAttention(
        progress.name,
        `lost track of ${progress.name} during its reboot: ${describeError(error)}`,
      );
    }
    // Not mid-reboot: put the current host back in service and restore the cluster.
    const detail = error instanceof StopSafelyError ? error.detail : errorDetail(error);
    const reason = error instanceof StopSafelyError ? error.message : describeError(error);
    // Every host is done and the restore was already tried twice: what is still changed needs a human.
    if (cp.phase === 'restoring') return this.#needsAttention(cp.cluster.name, reason);
    try {
      await this.#reenableCurrentHost();
      if (cp.phase !== 'restoring_placement') await this.#restoreCluster();
      await this.deps.checkpoints.clear(cp.cluster.name);
    } catch (restoreError) {
      return this.#needsAttention(
        this.#currentName(),
        `${reason}; then restoring the cluster failed: ${describeError(restoreError)}`,
      );
    }
    this.deps.emit({ type: 'failed', reason, error: detail, leftChanged: [] });
    return { status: 'failed', reason };
  }

  async #needsAttention(host: string, reason: string): Promise<RunOutcome> {
    const cp = this.checkpoint;
    cp.phase = 'needs_attention';
    if (!cp.attention.includes(reason)) cp.attention.push(reason);
    await this.#save().catch(() => undefined);
    const leftChanged = this.leftChanged();
    this.deps.emit({ type: 'needs_attention', host, reason, leftChanged });
    return { status: 'needs_attention', host, reason, leftChanged };
  }

  async #reenableCurrentHost(): Promise<void> {
    if (!this.#currentHost) return;
    const progress = this.#progress(this.#currentHost);
    if (progress.status !== 'disabled' && progress.status !== 'empty') return;
    await this.#save();
    const host = (await readPoolState(this.#xapi)).hostByUuid.get(this.#currentHost);
    if (host && !host.enabled) {
      await this.#xapi.enableHost(host.ref);
      this.deps.emit({ type: 'host_enabled', host: progress.name });
    }
    progress.status = 'pending';
    await this.#save();
  }

  /** Plain sentences naming everything this run changed and has not put back. */
  leftChanged(): string[] {
    return describeLeftChanged(this.checkpoint);
  }

  // ---- helpers -------------------------------------------------------------------------------

  #progress(uuid: string): HostProgress {
    const progress = this.checkpoint.hosts[uuid];
    if (!progress) throw new Error(`host ${uuid} is not part of this run`);
    return progress;
  }

  #currentName(): string {
    return this.#currentHost ? this.#progress(this.#currentHost).name : this.checkpoint.cluster.name;
  }

  #doneHostNames(): string[] {
    return this.checkpoint.order
      .map((uuid) => this.#progress(uuid))
      .filter((p) => p.status === 'done')
      .map((p) => p.name);
  }

  /** Hosts rebooted in this run, the most recent first (the preferred destination). */
  #rebootedHosts(): string[] {
    return this.checkpoint.order.filter((uuid) => this.#progress(uuid).status === 'done').reverse();
  }

  #destinationPreference(state: PoolState, leaving: string): string[] {
    const rebooted = this.#rebootedHosts();
    const ignored = new Set(this.#ignoredHostUuids(state));
    const others = state.hosts
      .filter(
        (h) =>
          h.uuid !== leaving &&
          h.enabled &&
          state.isLive(h) &&
          !ignored.has(h.uuid) &&
          !rebooted.includes(h.uuid),
      )
      .map((h) => h.uuid);
    return [...rebooted, ...others];
  }

  #ignoredHostUuids(state: PoolState): string[] {
    return state.hosts.filter((h) => this.request.ignoreHosts.includes(h.nameLabel)).map((h) => h.uuid);
  }

  #abortRequested(): boolean {
    if (this.control.abortRequested() && !this.checkpoint.abortRequested) {
      this.checkpoint.abortRequested = true;
      this.deps.emit({ type: 'abort_requested' });
    }
    return this.checkpoint.abortRequested;
  }

  #announceAbortIfRequested(): void {
    if (this.#abortAnnounced) return;
    if (this.#abortRequested()) this.#abortAnnounced = true;
  }

  #save(): Promise<void> {
    return this.deps.checkpoints.save(this.checkpoint);
  }
}

async function ignoreXapiCode(call: Promise<void>, code: string): Promise<void> {
  try {
    await call;
  } catch (error) {
    if (!(error instanceof XapiError && error.xapiCode === code)) throw error;
  }
}

function secondsSince(since: number): number {
  return Math.round((Date.now() - since) / 1000);
}

function nameOr(state: PoolState, uuid: string): string {
  return state.hostByUuid.get(uuid)?.nameLabel ?? uuid;
}

/** Plain sentences naming everything a run changed and has not put back, from its checkpoint alone. */
export function describeLeftChanged(cp: Checkpoint): string[] {
  const lines: string[] = [];
  const progress = cp.order.map((uuid) => cp.hosts[uuid]).filter((p): p is HostProgress => p !== undefined);
  for (const p of progress) {
    if (p.status === 'disabled' || p.status === 'empty')
      lines.push(`${p.name} is disabled in XAPI (not yet rebooted)`);
    if (p.status === 'rebooting')
      lines.push(`${p.name} was rebooting and is not confirmed back; it is disabled until it is`);
  }
  if (cp.changed.unmanaged)
    lines.push(`CloudStack cluster ${cp.cluster.name} is Unmanaged (was ${cp.saved.managedState})`);
  if (cp.changed.haDisabled)
    lines.push(`pool HA is off (was on, heartbeat SRs ${cp.saved.haHeartbeatSrUuids.join(', ')})`);
  if (cp.changed.autoPoweronDisabled) lines.push(`pool auto_poweron is false (was ${cp.saved.autoPoweron})`);
  const done = progress.filter((p) => p.status === 'done').map((p) => p.name);
  if (done.length > 0) lines.push(`already rebooted: ${done.join(', ')}`);
  lines.push('run the same command again to resume from the checkpoint');
  return lines;
}

/** Every VM on the host but its control domain, whatever its power state (a halted VM is resident nowhere). */
function residentNonDom0(state: PoolState, hostRef: string) {
  return state.allVms.filter(
    (vm) => !vm.isControlDomain && vm.residentOn === hostRef && vm.powerState !== 'Halted',
  );
}
