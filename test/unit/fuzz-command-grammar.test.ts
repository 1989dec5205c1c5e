/**
 * Property-based fuzzing of the two command parsers (the Slack `/reboot-cluster` text and the CLI's
 * argv): whatever they are fed (any unicode, control characters, huge or flag-like text) they never
 * throw anything but a usage error, a run comes only from input that matches the grammar, and every
 * field of an accepted run matches its strict pattern, so nothing from the text can carry a shell
 * metacharacter or Slack markup to an API call.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CLUSTER_NAME_PATTERN,
  type CliArguments,
  MAX_THREADS,
  parseCliArguments,
} from '../../src/cli/args.js';
import { HOOK_NAME_PATTERN } from '../../src/engine/hooks.js';
import { UsageError } from '../../src/errors.js';
import { MAX_COMMAND_LENGTH, parseSlashCommand, type SlashCommand } from '../../src/slack/command-grammar.js';

/** The grammar's host name rule (not exported: only the parsers use it). */
const HOST_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
/** What every accepted name is made of: no whitespace, shell metacharacter or Slack markup. */
const INERT = /^[A-Za-z0-9._-]+$/;
const SLACK_TEXT_LIMIT = 3000;
const RUNS = 400;

const FLAGS = [
  '--exec',
  '--threads',
  '--ignore-hosts',
  '--restore-placement',
  '--step',
  '--pre-empty-hook',
  '--post-empty-hook',
  '--json',
  '--help',
  '-h',
  '--',
  '-',
  '\u2014exec',
  '\u2013threads',
  '\u2014',
  '--exec=yes',
  '--threads=5',
  '--threads=',
  '--ignore-hosts=',
  '--__proto__',
  '--constructor',
  'status',
  'help',
];

const HOSTILE = [
  '$(reboot)',
  '`id`',
  ';',
  '|',
  '&&',
  '&amp;&amp;',
  '>',
  '<',
  "'",
  '"',
  '\\',
  '<@U0123ABCD>',
  '<@U0123ABCD|alice>',
  '<!channel>',
  '<!here>',
  '<!subteam^S0123|ops>',
  '<#C0123|ops>',
  '<https://evil.example|CLUSTER-1>',
  '*CLUSTER-1*',
  '../../etc/passwd',
  '%00',
  '\u0000',
  '\u001b[31m',
  '\u202e',
  '\u200b',
  '\ufeff',
  'CLUSTER-1\u0301',
  '\ud800',
  'CLUSTER\uff0d1',
  '\u0661\u0662',
  'a,$(id)',
  ',,,',
];

const SEPARATORS = [' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u2003', '\u3000', '\u200b'];

const controlChar = fc.integer({ min: 0, max: 0x1f }).map((code) => String.fromCharCode(code));

/** Any text at all: full unicode (lone surrogates included), ASCII, control characters, long. */
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: 'binary-ascii', maxLength: 200 }),
  fc.string({ unit: controlChar, maxLength: 40 }),
  fc.string({ unit: 'grapheme', minLength: 400, maxLength: 1_500 }),
);

const word = fc.oneof(
  fc.constantFrom(...FLAGS),
  fc.constantFrom(...HOSTILE),
  fc.stringMatching(CLUSTER_NAME_PATTERN),
  fc.integer({ min: -5, max: 40 }).map(String),
  fc.string({ unit: 'binary', maxLength: 12 }),
);

/** Flag-like text: words of the grammar, hostile snippets and noise, joined by odd whitespace. */
const flagLikeText = fc
  .tuple(fc.array(word, { maxLength: 14 }), fc.constantFrom(...SEPARATORS))
  .map(([words, separator]) => words.join(separator));

describe('parseSlashCommand under fuzzing', () => {
  it('never throws on any text, and whatever it returns is well-formed', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, flagLikeText), (text) => {
        expectWellFormed(parseSlashCommand(text));
      }),
      { numRuns: 2 * RUNS },
    );
  });

  it('survives huge and pathological text', () => {
    const huge = [
      'x'.repeat(1_000_000),
      '-'.repeat(1_000_000),
      `CLUSTER-1 ${'--exec '.repeat(100_000)}`,
      ' '.repeat(MAX_COMMAND_LENGTH),
      `CLUSTER-1${' '.repeat(MAX_COMMAND_LENGTH)}`,
      '\u0000'.repeat(MAX_COMMAND_LENGTH),
      '\ud83d\ude00'.repeat(MAX_COMMAND_LENGTH),
      `${'a '.repeat(MAX_COMMAND_LENGTH / 2)}`.slice(0, MAX_COMMAND_LENGTH),
    ];
    for (const text of huge) {
      const parsed = parseSlashCommand(text);
      expectWellFormed(parsed);
      if (text.length > MAX_COMMAND_LENGTH) expect(parsed).toMatchObject({ kind: 'error' });
    }
  });

  it('accepts a cluster name only from the strict pattern, and takes it verbatim', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.stringMatching(CLUSTER_NAME_PATTERN), fc.string({ unit: 'binary' })),
        (name) => {
          fc.pre(name !== '' && !/\s/.test(name) && !isReservedFirstWord(name));
          const asRun = parseSlashCommand(name);
          const asStatus = parseSlashCommand(`status ${name}`);
          if (CLUSTER_NAME_PATTERN.test(name)) {
            expect(asRun).toMatchObject({ kind: 'run', cluster: name, exec: false });
            expect(asStatus).toEqual({ kind: 'status', cluster: name });
          } else {
            expect(asRun.kind).toBe('error');
            expect(asStatus.kind).toBe('error');
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('reads every valid command exactly, in any order and with any spacing', () => {
    fc.assert(
      fc.property(
        validCommand,
        fc.constantFrom(...SEPARATORS.filter((s) => /^\s+$/.test(s))),
        (command, space) => {
          expect(parseSlashCommand(command.words.join(space))).toEqual({
            kind: 'run',
            cluster: command.cluster,
            exec: command.exec,
            options: command.options,
          });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('never yields a run from an invalid command', () => {
    fc.assert(
      fc.property(validCommand.chain(corruptSlash), ({ words, how }) => {
        const parsed = parseSlashCommand(words.join(' '));
        expect(parsed.kind, `${how}: ${JSON.stringify(words)}`).toBe('error');
      }),
      { numRuns: 2 * RUNS },
    );
  });

  it('refuses any text over the length limit, whatever it says', () => {
    fc.assert(
      fc.property(validCommand, fc.integer({ min: 1, max: 2_000 }), (command, extra) => {
        const text = command.words.join(' ');
        const padded = `${text}${' '.repeat(Math.max(0, MAX_COMMAND_LENGTH - text.length) + extra)}`;
        expect(parseSlashCommand(padded)).toMatchObject({
          kind: 'error',
          message: expect.stringContaining('too long'),
        });
      }),
      { numRuns: 50 },
    );
  });
});

describe('parseCliArguments under fuzzing', () => {
  it('returns well-formed arguments or throws a UsageError, for any argv', () => {
    const arg = fc.oneof(
      word,
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: controlChar }),
    );
    fc.assert(
      fc.property(fc.array(arg, { maxLength: 12 }), (argv) => {
        const outcome = cliOutcome(argv);
        if (outcome instanceof Error) expect(outcome).toBeInstanceOf(UsageError);
        else expectWellFormedCli(outcome);
      }),
      { numRuns: 2 * RUNS },
    );
  });

  it('accepts a cluster name only from the strict pattern', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.stringMatching(CLUSTER_NAME_PATTERN), fc.string({ unit: 'binary' })),
        (name) => {
          fc.pre(!name.startsWith('-'));
          const outcome = cliOutcome([name, '--exec']);
          if (CLUSTER_NAME_PATTERN.test(name)) expect(outcome).toMatchObject({ cluster: name, exec: true });
          else expect(outcome).toBeInstanceOf(UsageError);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('reads every valid argv exactly', () => {
    fc.assert(
      fc.property(validCommand, fc.boolean(), (command, json) => {
        const argv = cliWords(command, json);
        expect(parseCliArguments(argv)).toEqual({
          help: false,
          cluster: command.cluster,
          exec: command.exec,
          threads: command.options.threads,
          ignoreHosts: command.options.ignoreHosts,
          restorePlacement: command.options.restorePlacement,
          preEmptyHook: command.options.preEmptyHook,
          postEmptyHook: command.options.postEmptyHook,
          json,
        });
      }),
      { numRuns: RUNS },
    );
  });

  it('never accepts an invalid argv', () => {
    fc.assert(
      fc.property(validCommand.chain(corruptCli), ({ words, how }) => {
        expect(cliOutcome(words), `${how}: ${JSON.stringify(words)}`).toBeInstanceOf(UsageError);
      }),
      { numRuns: 2 * RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Checks

function expectWellFormed(parsed: SlashCommand): void {
  switch (parsed.kind) {
    case 'help':
      expect(Object.keys(parsed)).toEqual(['kind']);
      return;
    case 'status':
      if (parsed.cluster !== undefined) expectName(parsed.cluster, CLUSTER_NAME_PATTERN);
      return;
    case 'error':
      expect(typeof parsed.message).toBe('string');
      expect(parsed.message.length).toBeGreaterThan(0);
      expect(parsed.message.length).toBeLessThanOrEqual(SLACK_TEXT_LIMIT);
      return;
    case 'run': {
      expectName(parsed.cluster, CLUSTER_NAME_PATTERN);
      expect(typeof parsed.exec).toBe('boolean');
      const { options } = parsed;
      expect(Object.keys(options).every((key) => OPTION_KEYS.has(key))).toBe(true);
      expect(Number.isInteger(options.threads)).toBe(true);
      expect(options.threads).toBeGreaterThanOrEqual(1);
      expect(options.threads).toBeLessThanOrEqual(MAX_THREADS);
      expect(options.ignoreHosts.length).toBeLessThanOrEqual(64);
      expect(new Set(options.ignoreHosts).size).toBe(options.ignoreHosts.length);
      for (const host of options.ignoreHosts) expectName(host, HOST_NAME_PATTERN);
      expect(typeof options.restorePlacement).toBe('boolean');
      expect(typeof options.step).toBe('boolean');
      for (const hook of [options.preEmptyHook, options.postEmptyHook]) {
        if (hook !== undefined) expectName(hook, HOOK_NAME_PATTERN);
      }
      return;
    }
    default:
      throw new Error(`unexpected result ${JSON.stringify(parsed)}`);
  }
}

function expectWellFormedCli(args: CliArguments): void {
  if (args.help) return;
  expectName(args.cluster, CLUSTER_NAME_PATTERN);
  expect(Number.isInteger(args.threads)).toBe(true);
  expect(args.threads).toBeGreaterThanOrEqual(1);
  expect(args.threads).toBeLessThanOrEqual(MAX_THREADS);
  for (const host of args.ignoreHosts) expectName(host, HOST_NAME_PATTERN);
  for (const hook of [args.preEmptyHook, args.postEmptyHook]) {
    if (hook !== undefined) expectName(hook, HOOK_NAME_PATTERN);
  }
  for (const flag of [args.exec, args.restorePlacement, args.json]) expect(typeof flag).toBe('boolean');
}

function expectName(value: string, pattern: RegExp): void {
  expect(value).toMatch(pattern);
  expect(value).toMatch(INERT);
}

const OPTION_KEYS = new Set([
  'threads',
  'ignoreHosts',
  'restorePlacement',
  'step',
  'preEmptyHook',
  'postEmptyHook',
]);

function isReservedFirstWord(word: string): boolean {
  return ['help', 'status', '--help', '-h'].includes(word) || /^[-\u2013\u2014]/.test(word);
}

function cliOutcome(argv: string[]): CliArguments | Error {
  try {
    return parseCliArguments(argv);
  } catch (error) {
    return error as Error;
  }
}

// ---------------------------------------------------------------------------------------------
// Valid commands, and ways to break them

interface ValidCommand {
  cluster: string;
  exec: boolean;
  options: {
    threads: number;
    ignoreHosts: string[];
    restorePlacement: boolean;
    step: boolean;
    preEmptyHook?: string;
    postEmptyHook?: string;
  };
  /** The Slack words in a random order: `[flag, value]` pairs stay together. */
  words: string[];
  /** Where each field's value is in `words`, for corrupting it. */
  slots: Array<{ field: 'cluster' | 'host' | 'hook'; index: number }>;
}

const clusterName = fc
  .stringMatching(CLUSTER_NAME_PATTERN)
  .filter((name) => !['help', 'status'].includes(name));
const hostName = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$/);
const hookName = fc.stringMatching(HOOK_NAME_PATTERN);

const validCommand: fc.Arbitrary<ValidCommand> = fc
  .record({
    cluster: clusterName,
    exec: fc.boolean(),
    threads: fc.option(fc.integer({ min: 1, max: MAX_THREADS }), { nil: undefined }),
    ignoreHosts: fc.uniqueArray(hostName, { maxLength: 5 }),
    restorePlacement: fc.boolean(),
    step: fc.boolean(),
    preEmptyHook: fc.option(hookName, { nil: undefined }),
    postEmptyHook: fc.option(hookName, { nil: undefined }),
    equalsForm: fc.boolean(),
    order: fc.array(fc.nat(), { minLength: 8, maxLength: 8 }),
  })
  .map((c) => {
    const groups: Array<{ words: string[]; field?: 'cluster' | 'host' | 'hook' }> = [
      { words: [c.cluster], field: 'cluster' },
    ];
    const valued = (flag: string, value: string, field?: 'host' | 'hook') =>
      groups.push(
        c.equalsForm
          ? { words: [`${flag}=${value}`] }
          : { words: [flag, value], ...(field ? { field } : {}) },
      );
    if (c.exec) groups.push({ words: ['--exec'] });
    if (c.threads !== undefined) valued('--threads', String(c.threads));
    if (c.ignoreHosts.length > 0) valued('--ignore-hosts', c.ignoreHosts.join(','), 'host');
    if (c.restorePlacement) groups.push({ words: ['--restore-placement'] });
    if (c.step) groups.push({ words: ['--step'] });
    if (c.preEmptyHook !== undefined) valued('--pre-empty-hook', c.preEmptyHook, 'hook');
    if (c.postEmptyHook !== undefined) valued('--post-empty-hook', c.postEmptyHook, 'hook');
    const ordered = groups
      .map((group, i) => ({ group, key: c.order[i] ?? 0 }))
      .sort((a, b) => a.key - b.key)
      .map(({ group }) => group);
    const words: string[] = [];
    const slots: ValidCommand['slots'] = [];
    for (const group of ordered) {
      words.push(...group.words);
      if (group.field) slots.push({ field: group.field, index: words.length - 1 });
    }
    return {
      cluster: c.cluster,
      exec: c.exec,
      options: {
        threads: c.threads ?? 5,
        ignoreHosts: c.ignoreHosts,
        restorePlacement: c.restorePlacement,
        step: c.step,
        ...(c.preEmptyHook !== undefined ? { preEmptyHook: c.preEmptyHook } : {}),
        ...(c.postEmptyHook !== undefined ? { postEmptyHook: c.postEmptyHook } : {}),
      },
      words,
      slots,
    };
  });

/** Not allowed in any name: everything but letters, digits, `.`, `_`, `-` (and `,` between hosts). */
const forbiddenChar = fc
  .oneof(
    fc.constantFrom(...HOSTILE.map((h) => h[0] as string)),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  )
  .filter((c) => c.length > 0 && !/^[A-Za-z0-9._,-]$/.test(c) && !/\s/.test(c));

interface Corrupted {
  words: string[];
  how: string;
}

/** One way to break a valid command; common to both parsers. */
function corruptCommon(command: ValidCommand, argv: boolean): fc.Arbitrary<Corrupted> {
  const { words } = command;
  const clusterIndex = command.slots.find((slot) => slot.field === 'cluster')?.index ?? 0;
  const at = (index: number, value: string) => words.map((w, i) => (i === index ? value : w));
  const insertInto = (text: string, position: number, piece: string) =>
    `${text.slice(0, position)}${piece}${text.slice(position)}`;
  const arbitraries: Array<fc.Arbitrary<Corrupted>> = [
    // A forbidden character anywhere in a name (the cluster, a host, a hook).
    fc.tuple(fc.constantFrom(...command.slots), forbiddenChar, fc.nat()).map(([slot, char, n]) => {
      const value = words[slot.index] as string;
      return {
        words: at(slot.index, insertInto(value, n % (value.length + 1), char)),
        how: `forbidden ${JSON.stringify(char)} in ${slot.field}`,
      };
    }),
    // An uppercase letter or a dot in a hook name.
    ...command.slots
      .filter((slot) => slot.field === 'hook')
      .map((slot) =>
        fc
          .constantFrom('A', 'Z', '.')
          .map((char) => ({ words: at(slot.index, `${words[slot.index]}${char}`), how: 'bad hook char' })),
      ),
    // A cluster name that is too long.
    fc.constant({ words: at(clusterIndex, `${command.cluster}${'x'.repeat(64)}`), how: 'cluster too long' }),
    // --threads out of range or not a plain number.
    fc
      .constantFrom('0', '21', '99', '-1', '1.5', '1e1', '+5', '0x5', '\uff15', '\u0665', 'five', '')
      .map((threads) => ({
        words: [...withoutFlag(words, '--threads'), `--threads=${threads}`],
        how: `threads ${JSON.stringify(threads)}`,
      })),
    // An unknown flag, a short flag, a value on a boolean flag.
    fc
      .constantFrom('--exce', '--force', '-x', '--exec=yes', '--step=1', '--EXEC', '---exec')
      .map((flag) => ({ words: [...words, flag], how: `flag ${flag}` })),
    // A second cluster name.
    clusterName.map((other) => ({ words: [...words, other], how: 'two clusters' })),
    // An empty host list.
    fc.constantFrom(',', ',,,', '').map((list) => ({
      words: [...withoutFlag(words, '--ignore-hosts'), `--ignore-hosts=${list}`],
      how: 'empty host list',
    })),
  ];
  if (!argv) {
    // A flag given twice (the CLI's parseArgs keeps the last one, like most Unix tools).
    arbitraries.push(
      fc
        .constantFrom('--exec', '--step', '--threads=3')
        .map((flag) => ({ words: [...words, flag, flag], how: `twice ${flag}` })),
    );
  }
  return fc.oneof(...arbitraries);
}

function corruptSlash(command: ValidCommand): fc.Arbitrary<Corrupted> {
  // Whitespace inside a word splits it: a stray positional or a broken value. Never just before a
  // `-`: `drain--exec` split there is the valid `drain --exec`.
  const splits = command.slots.flatMap((slot) => {
    const value = command.words[slot.index] as string;
    return [...value]
      .map((char, position) => ({ slot, position, char }))
      .filter(({ position, char }) => position > 0 && char !== '-' && position < value.length);
  });
  if (splits.length === 0) return corruptCommon(command, false);
  const split = fc
    .tuple(fc.constantFrom(...splits), fc.constantFrom(...SEPARATORS.filter((s) => /\s/.test(s))))
    .map(([{ slot, position }, space]) => {
      const value = command.words[slot.index] as string;
      const broken = `${value.slice(0, position)}${space}${value.slice(position)}`;
      return { words: command.words.map((w, i) => (i === slot.index ? broken : w)), how: 'split word' };
    });
  return fc.oneof(corruptCommon(command, false), split);
}

function corruptCli(command: ValidCommand): fc.Arbitrary<Corrupted> {
  const cli = forCli(command);
  // In argv, whitespace inside a value stays in it (host lists are trimmed around commas only).
  const spaced = fc
    .tuple(
      fc.constantFrom(...cli.slots.filter((s) => s.field !== 'host')),
      fc.constantFrom(' ', '\t', '\n', '\u00a0'),
      fc.nat(),
    )
    .map(([slot, space, n]) => {
      const value = cli.words[slot.index] as string;
      const position = n % (value.length + 1);
      return {
        words: cli.words.map((w, i) =>
          i === slot.index ? `${value.slice(0, position)}${space}${value.slice(position)}` : w,
        ),
        how: 'whitespace in value',
      };
    });
  return fc.oneof(corruptCommon(cli, true), spaced);
}

/** The same command as argv (no `--step`: the CLI has none), plus `--json`. */
function cliWords(command: ValidCommand, json: boolean): string[] {
  const { words } = forCli(command);
  return json ? [...words, '--json'] : words;
}

/** Without `--step`, with the slots moved to match. */
function forCli(command: ValidCommand): ValidCommand {
  const stepsBefore = (index: number) => command.words.slice(0, index).filter((w) => w === '--step').length;
  return {
    ...command,
    words: command.words.filter((w) => w !== '--step'),
    slots: command.slots.map((slot) => ({ ...slot, index: slot.index - stepsBefore(slot.index) })),
  };
}

function withoutFlag(words: string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    if (w === flag) {
      i++;
      continue;
    }
    if (w.startsWith(`${flag}=`)) continue;
    out.push(w);
  }
  return out;
}
