/**
 * The CLI's arguments (DESIGN.md section 4), parsed strictly: an unknown flag or a bad value is a
 * usage error (exit 2) and nothing else happens.
 */
import { parseArgs } from 'node:util';
import { HOOK_NAME_PATTERN } from '../engine/hooks.js';
import { UsageError } from '../errors.js';

export const CLUSTER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const HOST_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
export const MAX_THREADS = 20;

export const USAGE = `Usage: reboot-cluster CLUSTER [--exec] [--threads N] [--ignore-hosts h1,h2] [--restore-placement]
                      [--pre-empty-hook NAME] [--post-empty-hook NAME] [--json]

Reboots every host of a XenServer / XCP-ng cluster managed by CloudStack, one at a time, pool
master first, live-migrating VMs away first. Without --exec it only checks and shows the plan.

  --exec                 really do it (otherwise a dry run that changes nothing)
  --threads N            live migrations at once per host, 1-${MAX_THREADS} (default 5)
  --ignore-hosts h1,h2   hosts not to reboot and not to move VMs to
  --restore-placement    afterwards move VMs back to the hosts they started on
  --pre-empty-hook NAME  run hook NAME (from HOOKS_FILE) on each host before emptying it
  --post-empty-hook NAME run hook NAME on each host once it is empty, before its reboot
  --json                 one JSON event per line on stdout
  -h, --help             this help

Exit codes: 0 done (or clean dry run), 1 failed / needs attention, 2 usage or configuration error,
3 refused by pre-flight, 4 aborted. Ctrl-C aborts at the next safe point; a second Ctrl-C stops at once.
Running the same command again resumes an interrupted run from its checkpoint in STATE_DIR.`;

export interface CliArguments {
  help: boolean;
  cluster: string;
  exec: boolean;
  threads: number;
  ignoreHosts: string[];
  restorePlacement: boolean;
  preEmptyHook?: string;
  postEmptyHook?: string;
  json: boolean;
}

export function parseCliArguments(argv: string[]): CliArguments {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help)
    return {
      help: true,
      cluster: '',
      exec: false,
      threads: 5,
      ignoreHosts: [],
      restorePlacement: false,
      json: false,
    };
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? 'Name the cluster to reboot'
        : `Expected one cluster name, got ${positionals.length}`,
    );
  }
  const cluster = positionals[0] as string;
  if (!CLUSTER_NAME_PATTERN.test(cluster)) {
    throw new UsageError(
      `${JSON.stringify(cluster)} is not a cluster name (letters, digits, . _ -, at most 64)`,
    );
  }
  const threads = values.threads === undefined ? 5 : Number(values.threads);
  if (!/^\d+$/.test(values.threads ?? '5') || threads < 1 || threads > MAX_THREADS) {
    throw new UsageError(`--threads must be a whole number from 1 to ${MAX_THREADS}`);
  }
  const ignoreHosts = (values['ignore-hosts'] ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  // `--ignore-hosts "$HOSTS"` with an empty variable must not quietly reboot the hosts meant to be skipped.
  if (values['ignore-hosts'] !== undefined && ignoreHosts.length === 0) {
    throw new UsageError('--ignore-hosts needs a comma-separated list of host names');
  }
  for (const host of ignoreHosts) {
    if (!HOST_NAME_PATTERN.test(host))
      throw new UsageError(`--ignore-hosts: ${JSON.stringify(host)} is not a host name`);
  }
  for (const flag of ['pre-empty-hook', 'post-empty-hook'] as const) {
    const name = values[flag];
    if (name !== undefined && !HOOK_NAME_PATTERN.test(name)) {
      throw new UsageError(
        `--${flag}: ${JSON.stringify(name)} is not a hook name (lowercase letters, digits, - and _)`,
      );
    }
  }
  return {
    help: false,
    cluster,
    exec: values.exec ?? false,
    threads,
    ignoreHosts,
    restorePlacement: values['restore-placement'] ?? false,
    preEmptyHook: values['pre-empty-hook'],
    postEmptyHook: values['post-empty-hook'],
    json: values.json ?? false,
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      exec: { type: 'boolean' },
      threads: { type: 'string' },
      'ignore-hosts': { type: 'string' },
      'restore-placement': { type: 'boolean' },
      'pre-empty-hook': { type: 'string' },
      'post-empty-hook': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
}
