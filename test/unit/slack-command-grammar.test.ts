import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_COMMAND_LENGTH, parseSlashCommand } from '../../src/slack/command-grammar.js';

const defaults = { threads: 5, ignoreHosts: [], restorePlacement: false, step: false };

describe('the /reboot-cluster grammar', () => {
  it('reads a dry run, an --exec run with every option, status and help', () => {
    expect(parseSlashCommand('CLUSTER-1')).toEqual({
      kind: 'run',
      cluster: 'CLUSTER-1',
      exec: false,
      options: defaults,
    });
    expect(
      parseSlashCommand(
        'CLUSTER-1 --exec --threads 3 --ignore-hosts xs-7,xs-9 --restore-placement --step --pre-empty-hook drain --post-empty-hook patch_bios',
      ),
    ).toEqual({
      kind: 'run',
      cluster: 'CLUSTER-1',
      exec: true,
      options: {
        threads: 3,
        ignoreHosts: ['xs-7', 'xs-9'],
        restorePlacement: true,
        step: true,
        preEmptyHook: 'drain',
        postEmptyHook: 'patch_bios',
      },
    });
    expect(parseSlashCommand('status')).toEqual({ kind: 'status' });
    expect(parseSlashCommand('  status   CLUSTER-1 ')).toEqual({ kind: 'status', cluster: 'CLUSTER-1' });
    expect(parseSlashCommand('help')).toEqual({ kind: 'help' });
    expect(parseSlashCommand('--help')).toEqual({ kind: 'help' });
  });

  it('accepts what Slack clients make of the text: em / en dashes for --, non-breaking spaces, --flag=value', () => {
    expect(parseSlashCommand('CLUSTER-1 \u2014exec')).toMatchObject({ kind: 'run', exec: true });
    expect(parseSlashCommand('CLUSTER-1\u00a0\u2013threads\u00a02')).toMatchObject({
      options: { threads: 2 },
    });
    expect(parseSlashCommand('CLUSTER-1 --threads=7')).toMatchObject({ options: { threads: 7 } });
  });

  it.each([
    ['', 'Name the cluster to reboot'],
    ['CLUSTER-1 --exce', "Unknown option '--exce'"],
    ['CLUSTER-1 -x', "Unknown option '-x'"],
    ['CLUSTER-1 --threads', 'argument missing'],
    ['CLUSTER-1 --threads 0', '--threads must be a whole number from 1 to 20'],
    ['CLUSTER-1 --threads 21', '--threads must be a whole number from 1 to 20'],
    ['CLUSTER-1 --threads 2.5', '--threads must be a whole number'],
    ['CLUSTER-1 --threads 1e1', '--threads must be a whole number'],
    ['CLUSTER-1 --exec=yes', "'--exec' does not take an argument"],
    ['CLUSTER-1 --exec --exec', '--exec is given twice'],
    ['CLUSTER-1 --threads 2 --threads 3', '--threads is given twice'],
    ['CLUSTER-1 CLUSTER-2', 'Expected one cluster name, got 2'],
    ['CLUSTER;rm', 'is not a cluster name'],
    ['<@U123>', 'is not a cluster name'],
    ['CLUSTER-1 --ignore-hosts ,', '--ignore-hosts needs a comma-separated list'],
    ['CLUSTER-1 --ignore-hosts a,$(id)', 'is not a host name'],
    ['CLUSTER-1 --pre-empty-hook Drain', 'is not a hook name'],
    ['CLUSTER-1 --post-empty-hook ../x', 'is not a hook name'],
    ['status CLUSTER-1 CLUSTER-2', '`status` takes at most one cluster name'],
    ['status a/b', 'is not a cluster name'],
    ['help me', '`help` takes no arguments'],
  ])('refuses %j: %s', (text, message) => {
    const parsed = parseSlashCommand(text);
    expect(parsed.kind).toBe('error');
    expect(parsed.kind === 'error' && parsed.message).toContain(message);
  });

  it('refuses text over the length limit before parsing it', () => {
    const parsed = parseSlashCommand(`CLUSTER-1 ${'x'.repeat(MAX_COMMAND_LENGTH)}`);
    expect(parsed).toEqual({
      kind: 'error',
      message: `The command is too long (at most ${MAX_COMMAND_LENGTH} characters)`,
    });
  });

  it('quotes bad input shortened, so a reply cannot be flooded', () => {
    const parsed = parseSlashCommand(`${'y'.repeat(300)}!`);
    expect(parsed.kind === 'error' && parsed.message.length).toBeLessThan(200);
  });

  it('never throws, whatever the text, and every run it returns is within the limits', () => {
    const word = fc.oneof(
      fc.constantFrom(
        '--exec',
        '--threads',
        '--step',
        '--ignore-hosts',
        '--pre-empty-hook',
        '—exec',
        'status',
        'help',
        '-',
        '--',
      ),
      fc.string({ maxLength: 12 }),
    );
    fc.assert(
      fc.property(
        fc.array(word, { maxLength: 8 }),
        fc.constantFrom(' ', '\u00a0', '\t', '  '),
        (words, space) => {
          const parsed = parseSlashCommand(words.join(space));
          if (parsed.kind === 'run') {
            expect(parsed.options.threads).toBeGreaterThanOrEqual(1);
            expect(parsed.options.threads).toBeLessThanOrEqual(20);
            expect(parsed.cluster).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
          }
          expect(['run', 'status', 'help', 'error']).toContain(parsed.kind);
        },
      ),
      { numRuns: 500 },
    );
  });
});
