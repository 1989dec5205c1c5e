/**
 * Builds the shape of a lab pool (hosts and VMs with memory sizes) from a few numbers, so that
 * `npm run lab -- --hosts 4 --vms 20` gives a pool that is busy but still fits N+1.
 */

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export interface HostSpec {
  name: string;
  memoryBytes: number;
  /** Bytes per second of the NIC that carries migrations off this host. */
  nicBytesPerSecond: number;
}

export interface VmSpec {
  name: string;
  memoryBytes: number;
  /** Index into the host list. */
  host: number;
  /** Its disk is on the host's local SR: it cannot live-migrate (a blocker). */
  onLocalSr?: boolean;
  /** An ISO is inserted in its CD drive. */
  cdInserted?: boolean;
  /** HA protection (`ha_restart_priority`), default "restart". */
  haRestartPriority?: string;
}

export interface PoolSpec {
  hosts: HostSpec[];
  vms: VmSpec[];
  /** Halted VMs with `other_config.auto_poweron=true`, placed on these host indexes. */
  autoPoweronVms: VmSpec[];
}

export interface GenerateOptions {
  hosts: number;
  vms: number;
  seed?: number;
  hostMemoryGiB?: number;
  nicGbitPerSecond?: number;
  /** Share of the pool's N+1 capacity that running VMs use, 0..1. */
  load?: number;
}

/** A small deterministic PRNG (mulberry32) so the same seed gives the same pool. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generatePoolSpec(options: GenerateOptions): PoolSpec {
  const random = seededRandom(options.seed ?? 42);
  const hostMemory = (options.hostMemoryGiB ?? 64) * GiB;
  const nicBytesPerSecond = ((options.nicGbitPerSecond ?? 10) * 1e9) / 8;
  const hosts: HostSpec[] = Array.from({ length: options.hosts }, (_, i) => ({
    name: `host${i + 1}`,
    memoryBytes: hostMemory,
    nicBytesPerSecond,
  }));

  // With one host out of service the others must hold everything: keep the total under
  // (hosts - 1) hosts' worth of guest memory, scaled by the load factor.
  const usablePerHost = hostMemory - DOM0_MEMORY_BYTES;
  const budget = Math.max(0, options.hosts - 1) * usablePerHost * (options.load ?? 0.6);
  const average = options.vms > 0 ? budget / options.vms : 0;
  const free = hosts.map(() => usablePerHost * (options.load ?? 0.6) * ((options.hosts - 1) / options.hosts));
  const vms: VmSpec[] = [];
  for (let i = 0; i < options.vms; i++) {
    const factor = [0.5, 1, 1, 1.5][Math.floor(random() * 4)] ?? 1;
    const memoryBytes = Math.max(256 * MiB, Math.floor((average * factor) / (256 * MiB)) * 256 * MiB);
    let host = 0;
    for (let h = 1; h < hosts.length; h++) if ((free[h] ?? 0) > (free[host] ?? 0)) host = h;
    free[host] = (free[host] ?? 0) - memoryBytes;
    vms.push({ name: `vm${String(i + 1).padStart(2, '0')}`, memoryBytes, host });
  }
  // One halted VM flagged to power on with its pool: it starts on a booting host if the pool's
  // auto_poweron is left on during a rolling reboot, as in real pools.
  const autoPoweronVms: VmSpec[] =
    options.vms > 0 ? [{ name: 'autostart01', memoryBytes: 512 * MiB, host: 0 }] : [];
  return { hosts, vms, autoPoweronVms };
}

/** Memory the control domain (dom0) of every lab host uses. */
export const DOM0_MEMORY_BYTES = 4 * GiB;
