/**
 * The bot's dry run: the engine's pre-flight, read-only, for a Slack request. The pool connection
 * it opens is always closed.
 */
import type { Config } from '../config.js';
import type { Finding, PlanSummary } from '../engine/events.js';
import type { RunRequest } from '../engine/ports.js';
import { runPreflight } from '../engine/preflight.js';
import type { Logger } from '../log.js';
import { createEngineDeps } from '../runtime.js';

export interface PlanAnswer {
  ok: boolean;
  findings: Finding[];
  plan?: PlanSummary;
}

export type PlanFunction = (request: RunRequest) => Promise<PlanAnswer>;

export function createPlanFunction(config: Config, logger?: Logger): PlanFunction {
  return async (request) => {
    const deps = createEngineDeps(config, { emit: () => {}, logger });
    const preflight = await runPreflight(deps, { ...request, exec: false });
    await preflight.connection?.close().catch(() => undefined);
    return { ok: preflight.ok, findings: preflight.findings, plan: preflight.summary };
  };
}
