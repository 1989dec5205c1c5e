/**
 * One run per cluster on this machine (invariant I4 for the CLI): an exclusive lock file holding
 * the owner's pid. A lock left by a process that no longer exists is taken over.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { checkpointFileName } from './checkpoint.js';

export interface ClusterLock {
  release(): Promise<void>;
}

export class ClusterBusyError extends Error {
  constructor(
    readonly cluster: string,
    readonly ownerPid: number,
  ) {
    super(`Another run on ${cluster} is in progress (process ${ownerPid}); wait for it or stop it first`);
  }
}

export async function lockCluster(stateDir: string, cluster: string): Promise<ClusterLock> {
  await mkdir(stateDir, { recursive: true });
  const path = join(stateDir, `${checkpointFileName(cluster)}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return { release: () => rm(path, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) throw new ClusterBusyError(cluster, owner);
      await rm(path, { force: true });
    }
  }
  throw new Error(`could not take the lock ${path}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
