/**
 * The lab hosts are not real shells, but hooks must run on them. They understand a tiny script
 * language, enough for hook tests and demos: statements separated by `;` or newlines, each one of
 * `echo TEXT`, `true`, `false`, `sleep-ms N` (ignored: hooks answer at once) or `exit N`.
 */
import type { LabExecResult } from './ssh-server.js';

const STATEMENT = /^(echo(?:\s+(?<text>.*))?|true|false|exit\s+(?<code>\d{1,3})|sleep-ms\s+\d+)$/;

/** Runs `script` if every statement is understood; undefined lets the SSH server answer "not found". */
export function runLabScript(script: string): LabExecResult | undefined {
  const statements = script
    .split(/[;\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (statements.length === 0 || !statements.every((s) => STATEMENT.test(s))) return undefined;
  let stdout = '';
  let exitCode = 0;
  for (const statement of statements) {
    const match = STATEMENT.exec(statement);
    if (statement.startsWith('echo')) {
      stdout += `${match?.groups?.text ?? ''}\n`;
      exitCode = 0;
    } else if (statement === 'true') exitCode = 0;
    else if (statement === 'false') exitCode = 1;
    else if (statement.startsWith('exit'))
      return { exitCode: Number(match?.groups?.code), stdout, stderr: '' };
  }
  return { exitCode, stdout, stderr: '' };
}
