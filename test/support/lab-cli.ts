/**
 * Runs the real `reboot-cluster` CLI in-process against a lab over real sockets, with every wait
 * shortened. Tests judge the run by the lab's operation log and invariant checker.
 */

import { EventEmitter } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Lab, type LabOptions, startLab } from '../../lab/lab.js';
import { TIMING_PRESETS } from '../../lab/timing-presets.js';
import { runCli } from '../../src/cli/run-cli.js';
import type { TimedEvent } from '../../src/engine/events.js';

/** Waits short enough that a 6-host run takes a few seconds, long enough not to flake on 2 cores. */
export const FAST_ENGINE_ENV: Record<string, string> = {
  POLL_INTERVAL_MS: '50',
  HOST_REBOOT_TIMEOUT_SECONDS: '15',
  HOST_SHUTDOWN_TIMEOUT_SECONDS: '5',
  MIGRATION_TIMEOUT_SECONDS: '15',
  CLOUDSTACK_WAIT_TIMEOUT_SECONDS: '10',
  CLOUDSTACK_TIMEOUT_SECONDS: '10',
  XAPI_CALL_TIMEOUT_SECONDS: '5',
  XAPI_LOGIN_TIMEOUT_SECONDS: '15',
  SSH_TIMEOUT_SECONDS: '3',
  LOG_LEVEL: 'silent',
};

export async function startTestLab(options: LabOptions = {}): Promise<Lab> {
  return startLab({
    ...options,
    timings: { ...TIMING_PRESETS.fast, ...options.timings },
    cloudstackTimings: { unmanageDelayMs: 100, reconnectDelayMs: 200, ...options.cloudstackTimings },
  });
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** The JSON events, when run with --json. */
  events: Array<Record<string, unknown> & { type: string }>;
}

export interface CliHandle {
  /** Simulates Ctrl-C on the running CLI. */
  interrupt(): void;
  done: Promise<CliRun>;
}

/** A state directory and hooks file for one test. */
export function testStateDir(hooks?: Record<string, { command: string; timeoutSeconds?: number }>): {
  stateDir: string;
  hooksFile?: string;
} {
  const stateDir = mkdtempSync(join(tmpdir(), 'crb-state-'));
  if (!hooks) return { stateDir };
  const hooksFile = join(stateDir, 'hooks.json');
  writeFileSync(hooksFile, JSON.stringify({ hooks }));
  return { stateDir, hooksFile };
}

export function startCli(lab: Lab, argv: string[], extraEnv: Record<string, string> = {}): CliHandle {
  let stdout = '';
  let stderr = '';
  const signals = new EventEmitter();
  const done = runCli(argv, {
    env: { ...lab.env(), ...FAST_ENGINE_ENV, ...extraEnv },
    stdout: {
      write: (text: string) => {
        stdout += text;
      },
    },
    stderr: {
      write: (text: string) => {
        stderr += text;
      },
    },
    signals: signals as unknown as Pick<NodeJS.Process, 'on' | 'off'>,
  }).then((code) => ({
    code,
    stdout,
    stderr,
    events: stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown> & { type: string }),
  }));
  return { interrupt: () => signals.emit('SIGINT'), done };
}

/** The JSON events of one type, typed: `eventsOf(run, 'plan')[0]?.plan.totalMigrations`. */
export function eventsOf<T extends TimedEvent['type']>(
  run: CliRun,
  type: T,
): Array<Extract<TimedEvent, { type: T }>> {
  return run.events.filter((event) => event.type === type) as unknown as Array<
    Extract<TimedEvent, { type: T }>
  >;
}

export function runCliAgainst(
  lab: Lab,
  argv: string[],
  extraEnv: Record<string, string> = {},
): Promise<CliRun> {
  return startCli(lab, argv, extraEnv).done;
}
