/**
 * `npm run bench`: planner quality against the alternatives, maintenance time in the lab, and the
 * bot's latency and footprint. Prints the tables and writes one JSON file per section, plus
 * `run.json` (machine, command, duration) and `summary.md` (the tables), into `--out`.
 *
 *   npm run bench                      the full benchmark (a few minutes), into bench/results
 *   npm run bench -- --quick           a tiny version (seconds), into bench/results/quick
 *   npm run bench -- --only planner    one or more of planner, maintenance, bot
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { botConfig, runBotBench } from './bot.js';
import { describeMachine } from './machine.js';
import { maintenanceConfig, runMaintenanceTime } from './maintenance-time.js';
import { runPlannerQuality } from './planner-quality.js';
import { renderTable, type Table } from './table.js';

const SECTIONS = ['planner', 'maintenance', 'bot'] as const;
type Section = (typeof SECTIONS)[number];

interface Options {
  quick: boolean;
  out: string;
  only: Section[];
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      only: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write('Usage: npm run bench -- [--quick] [--out DIR] [--only planner,maintenance,bot]\n');
    process.exit(0);
  }
  const only = (values.only ?? SECTIONS.join(',')).split(',').map((s) => s.trim());
  const unknown = only.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown.length > 0)
    throw new Error(`--only: unknown section ${unknown.join(', ')} (${SECTIONS.join(', ')})`);
  return {
    quick: values.quick ?? false,
    out: values.out ?? (values.quick ? 'bench/results/quick' : 'bench/results'),
    only: only as Section[],
  };
}

async function main(argv: string[]): Promise<void> {
  const options = parseOptions(argv);
  mkdirSync(options.out, { recursive: true });
  const startedAt = new Date();
  const machine = describeMachine();
  const progress = (line: string) => process.stderr.write(`[${elapsed(startedAt)}] ${line}\n`);
  const tables: Table[] = [];
  const write = (name: string, value: unknown) =>
    writeFileSync(join(options.out, name), `${JSON.stringify(value, jsonSafe, 2)}\n`);
  const show = (section: Table[]) => {
    for (const table of section) process.stdout.write(`\n${renderTable(table)}`);
    tables.push(...section);
  };

  progress(`benchmark ${options.quick ? '(quick) ' : ''}on ${machine.nproc} CPUs, node ${machine.node}`);
  if (options.only.includes('planner')) {
    progress('planner quality: generating pools and planning them with every planner');
    const { result, tables: section } = runPlannerQuality({ quick: options.quick });
    write('planner-quality.json', result);
    show(section);
  }
  if (options.only.includes('maintenance')) {
    const { result, tables: section } = await runMaintenanceTime(maintenanceConfig(options.quick), progress);
    write('maintenance-time.json', result);
    show(section);
  }
  if (options.only.includes('bot')) {
    const { result, tables: section } = await runBotBench(botConfig(options.quick), progress);
    write('bot.json', result);
    show(section);
  }

  const seconds = Math.round((Date.now() - startedAt.getTime()) / 1000);
  write('run.json', {
    command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`,
    quick: options.quick,
    sections: options.only,
    startedAt: startedAt.toISOString(),
    seconds,
    machine,
  });
  writeFileSync(join(options.out, 'summary.md'), tables.map(renderTable).join('\n'));
  progress(`done in ${seconds} s; results in ${options.out}`);
}

function elapsed(since: Date): string {
  const s = Math.round((Date.now() - since.getTime()) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** NaN and Infinity are not JSON: written as null, so a missing measurement stays visible. */
function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(
      `benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
