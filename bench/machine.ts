/** The machine a benchmark ran on, recorded with its results. */
import { availableParallelism, cpus, freemem, loadavg, totalmem } from 'node:os';

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  freeMemoryGiB: number;
  /** One-minute load average when the benchmark started: other work on the machine skews timings. */
  loadAverage1m: number;
  node: string;
  platform: string;
}

export function describeMachine(): MachineInfo {
  const GiB = 1024 ** 3;
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / GiB) * 10) / 10,
    freeMemoryGiB: Math.round((freemem() / GiB) * 10) / 10,
    loadAverage1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}
