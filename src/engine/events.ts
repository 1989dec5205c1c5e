/**
 * Everything the engine does is reported as one of these events, in order. The CLI prints them
 * (or writes them as JSON lines), the Slack bot renders them into the run's thread.
 */

export interface PlannedMigration {
  vm: string;
  to: string;
  memory: number;
}

export interface PlannedHost {
  host: string;
  master: boolean;
  vms: number;
  migrations: PlannedMigration[];
}

export interface Finding {
  severity: 'blocker' | 'warning' | 'info';
  /** Stable machine-readable code, XAPI's verbatim when it comes from XAPI. */
  code: string;
  host?: string;
  vm?: string;
  message: string;
}

export interface PlanSummary {
  cluster: string;
  hosts: PlannedHost[];
  totalMigrations: number;
  optimalMigrations: number;
  memoryMoved: number;
  estimatedSeconds: number;
}

export type EngineEvent =
  | { type: 'preflight'; cluster: string; hosts: number; runningVms: number; findings: Finding[] }
  | { type: 'plan'; plan: PlanSummary }
  | { type: 'run_started'; runId: string; resumed: boolean; threads: number }
  | { type: 'cluster_unmanaged'; cluster: string }
  | { type: 'ha_disabled'; heartbeatSrs: string[]; configuration: Record<string, string> }
  | { type: 'auto_poweron_disabled' }
  | { type: 'host_started'; host: string; index: number; total: number; vms: number }
  | { type: 'host_disabled'; host: string }
  | { type: 'hook_started'; host: string; hook: string; phase: 'pre-empty' | 'post-empty' }
  | {
      type: 'hook_finished';
      host: string;
      hook: string;
      phase: 'pre-empty' | 'post-empty';
      exitCode: number | null;
      output: string;
      seconds: number;
    }
  | { type: 'migration_started'; vm: string; from: string; to: string; memory: number; attempt: number }
  | { type: 'migration_finished'; vm: string; from: string; to: string; seconds: number; attempt: number }
  | {
      type: 'migration_failed';
      vm: string;
      from: string;
      to: string;
      seconds: number;
      attempt: number;
      /** XAPI's ErrorDescription verbatim, or the local error code and message. */
      error: string[];
      willRetry: boolean;
    }
  | { type: 'host_empty'; host: string; seconds: number }
  | { type: 'host_rebooting'; host: string }
  | { type: 'host_down'; host: string; seconds: number }
  | { type: 'host_up'; host: string; seconds: number }
  | { type: 'host_enabled'; host: string }
  | { type: 'host_done'; host: string; seconds: number; migrations: number; index: number; total: number }
  | { type: 'paused'; nextHost: string }
  | { type: 'continued'; nextHost: string }
  | { type: 'abort_requested' }
  | { type: 'suspended'; nextHost: string }
  | { type: 'restoring'; what: string }
  | { type: 'ha_restored'; heartbeatSrs: string[] }
  | { type: 'auto_poweron_restored' }
  | { type: 'cluster_managed'; cluster: string; hostsUp: number }
  | {
      type: 'placement_restored';
      moved: number;
      notMoved: Array<{ vm: string; home: string; reason: string }>;
    }
  | { type: 'warning'; message: string }
  | { type: 'aborted'; leftChanged: string[]; hostsDone: string[] }
  | { type: 'needs_attention'; host: string; reason: string; leftChanged: string[] }
  | { type: 'failed'; reason: string; error: string[]; leftChanged: string[] }
  | {
      type: 'finished';
      seconds: number;
      migrations: number;
      hosts: Array<{ host: string; seconds: number }>;
      attention: string[];
    };

export type EngineEventType = EngineEvent['type'];

/** An event as delivered: with the time it happened. */
export type TimedEvent = EngineEvent & { at: string };

export type EventSink = (event: TimedEvent) => void;
