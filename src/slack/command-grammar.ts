/**
 * The `/reboot-cluster` text (DESIGN.md section 4), parsed strictly with `node:util` `parseArgs`:
 * an unknown flag or a bad value is an error message for the user, never an exception, and
 * nothing else happens.
 */
import { parseArgs } from 'node:util';
import { CLUSTER_NAME_PATTERN, MAX_THREADS } from '../cli/args.js';
import { HOOK_NAME_PATTERN } from '../engine/hooks.js';
import type { RunOptions } from '../queue/contracts.js';

/** Longer text is refused before parsing: no legitimate command comes close. */
export const MAX_COMMAND_LENGTH = 500;
export const DEFAULT_THREADS = 5;
const HOST_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const MAX_IGNORED_HOSTS = 64;

export const SLASH_USAGE = `*Usage*
\`/reboot-cluster CLUSTER\` shows the plan (a dry run: nothing changes)
\`/reboot-cluster CLUSTER --exec [options]\` posts the plan for a second engineer to approve, then reboots
\`/reboot-cluster status [CLUSTER]\` current and recent runs
\`/reboot-cluster help\` this help

*Options*
\`--threads N\` live migrations at once per host, 1-${MAX_THREADS} (default ${DEFAULT_THREADS})
\`--ignore-hosts h1,h2\` hosts not to reboot and not to move VMs to
\`--restore-placement\` afterwards move VMs back to the hosts they started on
\`--step\` wait for a Continue click before each host
\`--pre-empty-hook NAME\` run hook NAME on each host before emptying it
\`--post-empty-hook NAME\` run hook NAME on each host once it is empty, before its reboot`;

export type SlashCommand =
  | { kind: 'help' }
  | { kind: 'status'; cluster?: string }
  | { kind: 'run'; cluster: string; exec: boolean; options: RunOptions }
  | { kind: 'error'; message: string };

export function parseSlashCommand(text: string): SlashCommand {
  if (text.length > MAX_COMMAND_LENGTH) {
    return { kind: 'error', message: `The command is too long (at most ${MAX_COMMAND_LENGTH} characters)` };
  }
  const words = splitWords(text);
  const [first, ...rest] = words;
  if (first === undefined) return { kind: 'error', message: 'Name the cluster to reboot' };
  if (first === 'help' || first === '--help' || first === '-h') {
    return rest.length === 0 ? { kind: 'help' } : { kind: 'error', message: '`help` takes no arguments' };
  }
  if (first === 'status') return parseStatus(rest);
  return parseRun(words);
}

/**
 * Splits on any whitespace (Slack may send non-breaking spaces), and turns the dashes that
 * desktop and phone keyboards make of `--` (en and em dash) back into `--`.
 */
function splitWords(text: string): string[] {
  return text
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((word) => word.replace(/^[\u2013\u2014]-?/, '--'));
}

function parseStatus(args: string[]): SlashCommand {
  if (args.length === 0) return { kind: 'status' };
  const [cluster, ...extra] = args;
  if (extra.length > 0 || cluster === undefined) {
    return { kind: 'error', message: '`status` takes at most one cluster name' };
  }
  if (!CLUSTER_NAME_PATTERN.test(cluster)) return { kind: 'error', message: notAClusterName(cluster) };
  return { kind: 'status', cluster };
}

function parseRun(args: string[]): SlashCommand {
  let parsed: ReturnType<typeof parseRunArgs>;
  try {
    parsed = parseRunArgs(args);
  } catch (error) {
    return { kind: 'error', message: plainParseError(error) };
  }
  const { values, positionals, tokens } = parsed;
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) return { kind: 'error', message: `--${token.name} is given twice` };
    seen.add(token.name);
  }
  if (positionals.length !== 1) {
    return {
      kind: 'error',
      message:
        positionals.length === 0
          ? 'Name the cluster to reboot'
          : `Expected one cluster name, got ${positionals.length}: ${positionals.map(quote).join(' ')}`,
    };
  }
  const cluster = positionals[0] as string;
  if (!CLUSTER_NAME_PATTERN.test(cluster)) return { kind: 'error', message: notAClusterName(cluster) };

  const threadsText = values.threads ?? String(DEFAULT_THREADS);
  const threads = Number(threadsText);
  if (!/^\d{1,3}$/.test(threadsText) || threads < 1 || threads > MAX_THREADS) {
    return { kind: 'error', message: `--threads must be a whole number from 1 to ${MAX_THREADS}` };
  }

  const ignoreHosts = (values['ignore-hosts'] ?? '')
    .split(',')
    .map((host) => host.trim())
    .filter(Boolean);
  if (values['ignore-hosts'] !== undefined && ignoreHosts.length === 0) {
    return { kind: 'error', message: '--ignore-hosts needs a comma-separated list of host names' };
  }
  if (ignoreHosts.length > MAX_IGNORED_HOSTS) {
    return { kind: 'error', message: `--ignore-hosts takes at most ${MAX_IGNORED_HOSTS} hosts` };
  }
  const badHost = ignoreHosts.find((host) => !HOST_NAME_PATTERN.test(host));
  if (badHost !== undefined)
    return { kind: 'error', message: `--ignore-hosts: ${quote(badHost)} is not a host name` };

  for (const flag of ['pre-empty-hook', 'post-empty-hook'] as const) {
    const name = values[flag];
    if (name !== undefined && !HOOK_NAME_PATTERN.test(name)) {
      return {
        kind: 'error',
        message: `--${flag}: ${quote(name)} is not a hook name (lowercase letters, digits, - and _)`,
      };
    }
  }

  return {
    kind: 'run',
    cluster,
    exec: values.exec ?? false,
    options: {
      threads,
      ignoreHosts: [...new Set(ignoreHosts)],
      restorePlacement: values['restore-placement'] ?? false,
      step: values.step ?? false,
      ...(values['pre-empty-hook'] !== undefined ? { preEmptyHook: values['pre-empty-hook'] } : {}),
      ...(values['post-empty-hook'] !== undefined ? { postEmptyHook: values['post-empty-hook'] } : {}),
    },
  };
}

function parseRunArgs(args: string[]) {
  return parseArgs({
    args,
    options: {
      exec: { type: 'boolean' },
      threads: { type: 'string' },
      'ignore-hosts': { type: 'string' },
      'restore-placement': { type: 'boolean' },
      step: { type: 'boolean' },
      'pre-empty-hook': { type: 'string' },
      'post-empty-hook': { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
    tokens: true,
  });
}

/** parseArgs' messages mention "To specify a positional argument starting with a '-'..." hints; keep the first sentence. */
function plainParseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split('\n')[0] ?? message).replace(/\. To specify a positional argument.*$/, '');
}

function notAClusterName(value: string): string {
  return `${quote(value)} is not a cluster name (letters, digits, . _ -, at most 64)`;
}

/** Quotes user text for a message, shortened so a long word cannot flood the reply. */
function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}
