/**
 * Host hooks: named commands defined on the worker's side (HOOKS_FILE), run over SSH on a host
 * before it is emptied or after it is empty. A command line or Slack only ever names a hook; the
 * command itself never comes from there.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, UsageError } from '../errors.js';

export const HOOK_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

const hooksFileSchema = z.object({
  hooks: z.record(
    z.string().regex(HOOK_NAME_PATTERN, { message: 'hook names are lowercase letters, digits, - and _' }),
    z.object({
      command: z.string().min(1),
      timeoutSeconds: z.number().int().positive().default(1800),
      description: z.string().optional(),
    }),
  ),
});

export interface HookDefinition {
  name: string;
  command: string;
  timeoutMs: number;
  description?: string;
}

export type HookCatalog = ReadonlyMap<string, HookDefinition>;

export function loadHookCatalog(path: string | undefined): HookCatalog {
  if (!path) return new Map();
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError([`HOOKS_FILE ${path} is not readable JSON: ${(error as Error).message}`]);
  }
  const parsed = hooksFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map(
        (issue) => `HOOKS_FILE ${path}: ${issue.path.join('.') || 'file'}: ${issue.message}`,
      ),
    );
  }
  return new Map(
    Object.entries(parsed.data.hooks).map(([name, hook]) => [
      name,
      { name, command: hook.command, timeoutMs: hook.timeoutSeconds * 1000, description: hook.description },
    ]),
  );
}

/** The hook named `name`, or a usage error listing the hooks that exist. */
export function resolveHook(
  catalog: HookCatalog,
  name: string | undefined,
  flag: string,
): HookDefinition | undefined {
  if (name === undefined) return undefined;
  const hook = catalog.get(name);
  if (hook) return hook;
  const known = [...catalog.keys()];
  throw new UsageError(
    `${flag}: no hook named ${JSON.stringify(name)}. ` +
      (known.length > 0 ? `Defined hooks: ${known.join(', ')}.` : 'No hooks are defined (set HOOKS_FILE).'),
  );
}
