/**
 * A private redis-server for one test file: started on a free port with nothing persisted, and
 * stopped afterwards. `REDIS_URL` (if set) is used instead, with a unique key prefix, and is never
 * flushed: we do not own it.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

export interface TestRedis {
  url: string;
  /** A key prefix unique to this test file, for BullMQ and our own keys. */
  prefix: string;
  /** Stops the server (SIGTERM) and starts it again on the same port: for Redis-restart tests. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestRedis(): Promise<TestRedis> {
  const prefix = `crbtest${randomBytes(4).toString('hex')}`;
  const external = process.env.REDIS_URL;
  if (external) {
    return {
      url: external,
      prefix,
      restart: () => Promise.reject(new Error('cannot restart an external Redis')),
      stop: async () => {},
    };
  }
  return startPrivateRedis({ persistent: false, prefix });
}

/**
 * A redis-server owned by the caller, whatever REDIS_URL says: for tests that stop or restart it.
 * With `persistent` it keeps its data across `restart()` (append-only file, fsync on every write).
 */
export async function startPrivateRedis(options: {
  persistent: boolean;
  prefix?: string;
}): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'crb-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    options.persistent ? 'yes' : 'no',
    '--appendfsync',
    'always',
    '--maxmemory-policy',
    'noeviction',
  ];
  let child = await launch(args);
  return {
    url: `redis://127.0.0.1:${port}`,
    prefix: options.prefix ?? `crbtest${randomBytes(4).toString('hex')}`,
    restart: async () => {
      await terminate(child);
      // A test may stop() first (Redis down) and restart() later: the directory must be there.
      mkdirSync(dir, { recursive: true });
      child = await launch(args);
    },
    stop: async () => {
      await terminate(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function launch(args: string[]): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('redis-server did not start within 10 s')), 10_000);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start redis-server (is it installed?): ${error.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}: ${output.slice(-500)}`));
    });
  });
  return child;
}

function terminate(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
