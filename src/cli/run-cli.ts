/**
 * The `reboot-cluster` command: parse, configure, lock, run the engine, print, and map the outcome
 * to an exit code. Takes its environment and streams as parameters so tests and the demo can run
 * it in-process over real sockets.
 */
import { type Env, loadConfig, readEnvironment, secretValues } from '../config.js';
import type { EngineEvent, TimedEvent } from '../engine/events.js';
import { loadHookCatalog, resolveHook } from '../engine/hooks.js';
import { exitCodeOf, type RunOutcome } from '../engine/outcome.js';
import { runRollingReboot } from '../engine/run.js';
import { ClusterBusyError, type ClusterLock, lockCluster } from '../engine/run-lock.js';
import { ConfigError, describeError, UsageError } from '../errors.js';
import { createLogger } from '../log.js';
import { createEngineDeps } from '../runtime.js';
import { parseCliArguments, USAGE } from './args.js';
import { createHumanRenderer, type Output } from './human-output.js';

export interface CliIo {
  env: Env;
  stdout: Output;
  stderr: Output;
  /** Where Ctrl-C comes from; the real process by default. */
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
  /** Read a `.env` file from the working directory (the real CLI does; tests do not). */
  readDotEnv?: boolean;
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let args: ReturnType<typeof parseCliArguments>;
  try {
    args = parseCliArguments(argv);
  } catch (error) {
    io.stderr.write(`${describeError(error)}\n\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const env = io.readDotEnv ? readEnvironment(io.env) : io.env;
  const scrub = scrubber(secretValues(env));
  let config: ReturnType<typeof loadConfig>;
  let request: Parameters<typeof runRollingReboot>[1];
  try {
    config = loadConfig(env);
    const hooks = loadHookCatalog(config.hooksFile);
    request = {
      cluster: args.cluster,
      exec: args.exec,
      threads: args.threads,
      ignoreHosts: args.ignoreHosts,
      restorePlacement: args.restorePlacement,
      preEmptyHook: resolveHook(hooks, args.preEmptyHook, '--pre-empty-hook'),
      postEmptyHook: resolveHook(hooks, args.postEmptyHook, '--post-empty-hook'),
    };
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) {
      io.stderr.write(`${scrub(error.message)}\n`);
      return 2;
    }
    throw error;
  }

  const logger = createLogger({ level: config.logLevel });
  const render = args.json
    ? (e: TimedEvent) => io.stdout.write(`${JSON.stringify(e)}\n`)
    : createHumanRenderer(io.stdout);
  const emit = (event: EngineEvent) =>
    render(JSON.parse(scrub(JSON.stringify({ at: new Date().toISOString(), ...event }))));

  let lock: ClusterLock | undefined;
  if (args.exec) {
    try {
      lock = await lockCluster(config.stateDir, args.cluster);
    } catch (error) {
      if (!(error instanceof ClusterBusyError)) throw error;
      io.stderr.write(`${error.message}\n`);
      return 3;
    }
  }

  let abortRequested = false;
  const hardStop = new AbortController();
  const onInterrupt = () => {
    if (!abortRequested) {
      abortRequested = true;
      io.stderr.write(
        '\nAbort requested: stopping at the next safe point and restoring the cluster. Ctrl-C again stops at once.\n',
      );
    } else {
      io.stderr.write('\nStopping at once.\n');
      hardStop.abort();
    }
  };
  const signals = io.signals ?? process;
  signals.on('SIGINT', onInterrupt);
  signals.on('SIGTERM', onInterrupt);

  let outcome: RunOutcome;
  try {
    const deps = createEngineDeps(config, { emit, logger });
    outcome = await runRollingReboot(deps, request, {
      abortRequested: () => abortRequested,
      hardStop: hardStop.signal,
    });
  } catch (error) {
    io.stderr.write(`reboot-cluster failed: ${scrub(describeError(error))}\n`);
    outcome = { status: 'failed', reason: describeError(error) };
  } finally {
    signals.off('SIGINT', onInterrupt);
    signals.off('SIGTERM', onInterrupt);
    await lock?.release();
  }

  const code = exitCodeOf(outcome);
  if (args.json)
    io.stdout.write(
      `${JSON.stringify({ at: new Date().toISOString(), type: 'outcome', ...outcome, exitCode: code })}\n`,
    );
  else io.stdout.write(`${describeOutcome(outcome)} (exit ${code})\n`);
  return code;
}

function describeOutcome(outcome: RunOutcome): string {
  switch (outcome.status) {
    case 'dry_run':
      return outcome.ok
        ? 'Dry run: nothing was changed. Add --exec to do it'
        : 'Dry run: --exec would be refused (see the blockers above)';
    case 'refused':
      return `Refused by pre-flight, nothing was changed: ${outcome.reason}`;
    case 'done':
      return outcome.attention.length === 0
        ? 'Rolling reboot finished'
        : 'Rolling reboot finished, with items that need a human';
    case 'aborted':
      return 'Rolling reboot aborted; the cluster was restored';
    case 'failed':
      return `Rolling reboot failed: ${outcome.reason}`;
    case 'needs_attention':
      return `Rolling reboot halted: ${outcome.host} needs attention`;
    case 'suspended':
      return `Suspended before ${outcome.nextHost}; run the same command again to resume`;
    case 'stopped':
      return `Stopped at once. Left changed:\n${outcome.leftChanged.map((l) => `  - ${l}`).join('\n')}`;
  }
}

/** Replaces every configured secret value in a text: a last guard for remote error texts. */
function scrubber(secrets: string[]): (text: string) => string {
  return (text) => secrets.reduce((t, secret) => t.split(secret).join('[redacted]'), text);
}
