/**
 * The small interfaces the engine depends on. The real clients (XAPI, CloudStack, SSH) implement
 * them over the wire; tests run the same real clients against the lab.
 */
import type { CloudStackCluster, CloudStackHost, ManagedState } from '../cloudstack/types.js';
import type { SshCommandResult } from '../ssh/client.js';
import type { CheckpointStore } from './checkpoint.js';
import type { EngineEvent } from './events.js';
import type { HookDefinition } from './hooks.js';
import type { HypervisorPool } from './pool-state.js';

export interface CloudManager {
  listClusters(filter: { name?: string; id?: string }): Promise<CloudStackCluster[]>;
  listHosts(filter: { clusterId: string }): Promise<CloudStackHost[]>;
  updateCluster(args: { id: string; managedState: ManagedState }): Promise<CloudStackCluster>;
}

export interface PoolConnection {
  readonly pool: HypervisorPool;
  close(): Promise<void>;
}

export interface HostShell {
  /** Connects, authenticates (host key checked) and reads the kernel boot id. */
  probe(address: string): Promise<{ bootId: string }>;
  run(address: string, command: string, timeoutMs: number): Promise<SshCommandResult>;
}

export interface EngineTimings {
  hostRebootTimeoutMs: number;
  hostShutdownTimeoutMs: number;
  migrationTimeoutMs: number;
  cloudstackWaitTimeoutMs: number;
  pollIntervalMs: number;
}

export interface DurationEstimates {
  /** Effective live-migration throughput off one host (all parallel migrations together). */
  migrationBytesPerSecond: number;
  /** From `host.reboot` to the host being back and enabled. */
  hostRebootMs: number;
}

export interface EngineDeps {
  cloud: CloudManager;
  /** Logs in to the pool through any of `addresses` (follows the master). */
  connectPool(addresses: string[]): Promise<PoolConnection>;
  shell: HostShell;
  checkpoints: CheckpointStore;
  timings: EngineTimings;
  estimates: DurationEstimates;
  emit(event: EngineEvent): void;
}

export interface RunRequest {
  cluster: string;
  exec: boolean;
  threads: number;
  ignoreHosts: string[];
  restorePlacement: boolean;
  preEmptyHook?: HookDefinition;
  postEmptyHook?: HookDefinition;
}

/** How the outside (Ctrl-C, Slack buttons) steers a run. Checked only at safe points. */
export interface RunControl {
  /** True once someone asked to abort: the run stops at the next safe point and restores the cluster. */
  abortRequested(): boolean;
  /** Step mode: resolves when the run may start `nextHost`; undefined = never pause. */
  waitBeforeHost?(nextHost: string): Promise<void>;
  /** Called before each host, e.g. to re-check a cluster lock; throwing stops the run safely. */
  beforeHost?(host: string): Promise<void>;
  /**
   * True when this process is shutting down: the run stops before the next host and leaves its
   * checkpoint and the cluster as they are, for another worker to resume.
   */
  suspendRequested?(): boolean;
  /** Aborted only for a hard stop (second Ctrl-C, shutdown): in-flight waits end at once. */
  readonly hardStop?: AbortSignal;
}

export const DEFAULT_DURATION_ESTIMATES: DurationEstimates = {
  migrationBytesPerSecond: 1_000_000_000,
  hostRebootMs: 300_000,
};
