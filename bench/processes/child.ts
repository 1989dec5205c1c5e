/**
 * A benchmark's helper process (`node --import tsx <script>`), so what it measures (a bot's acks, a
 * worker's memory and CPU) is that process alone, not the labs and load generators around it.
 * The child writes one JSON object per stdout line; `waitFor` resolves on the first matching one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface ChildLine {
  kind: string;
  [key: string]: unknown;
}

export interface BenchChild {
  readonly pid: number;
  readonly lines: ChildLine[];
  waitFor(predicate: (line: ChildLine) => boolean, what: string, timeoutMs: number): Promise<ChildLine>;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export function spawnBenchChild(script: string, env: Record<string, string>): BenchChild {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${script}`);
  const lines: ChildLine[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  let exited: number | null | undefined;
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const part of parts) {
      if (!part.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(part) as ChildLine);
      } catch {
        // A line that is not ours (a library printing to stdout) is not a protocol line.
      }
    }
    for (const wake of waiters) wake();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const exit = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      exited = code;
      for (const wake of waiters) wake();
      resolve(code);
    });
  });

  return {
    pid: child.pid,
    lines,
    waitFor: (predicate, what, timeoutMs) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(predicate);
          if (found) {
            finish();
            resolve(found);
          } else if (exited !== undefined) {
            finish();
            reject(new Error(`${script} exited (${exited}) before ${what}: ${stderr.slice(-1_500)}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${script}: no ${what} within ${timeoutMs} ms: ${stderr.slice(-1_500)}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    stop: async (graceMs = 30_000) => {
      if (exited !== undefined) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exit;
      clearTimeout(timer);
      return code;
    },
  };
}
