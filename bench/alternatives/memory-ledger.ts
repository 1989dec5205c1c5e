/**
 * Where every VM runs and how much memory each host has left, as an alternative planner changes
 * it move by move. Capacities are the engine's own (`guestCapacity`), so every planner works from
 * the same figures that `replayPlan` judges them by.
 */
import type { Migration } from '../../src/engine/planner.js';
import {
  compareHosts,
  guestCapacity,
  type PoolSnapshot,
  type SnapshotHost,
  type SnapshotVm,
} from '../../src/engine/snapshot.js';

export class MemoryLedger {
  /** Hosts in natural name order: the order XAPI and CloudStack list them in for these pools. */
  readonly hosts: SnapshotHost[];
  readonly #capacity = new Map<string, number>();
  readonly #used = new Map<string, number>();
  readonly #residence = new Map<string, string>();
  /** Position in the snapshot: a VM's place in `xe vm-list` output (creation order). */
  readonly #listing = new Map<string, number>();
  readonly #vms: SnapshotVm[];

  constructor(snapshot: PoolSnapshot) {
    this.hosts = [...snapshot.hosts].sort(compareHosts);
    this.#vms = snapshot.vms;
    for (const host of snapshot.hosts) this.#used.set(host.id, 0);
    for (const [index, vm] of snapshot.vms.entries()) {
      this.#residence.set(vm.id, vm.residentOn);
      this.#listing.set(vm.id, index);
      this.#used.set(vm.residentOn, (this.#used.get(vm.residentOn) ?? 0) + vm.memory);
    }
    for (const host of snapshot.hosts)
      this.#capacity.set(host.id, guestCapacity(host, this.#used.get(host.id) ?? 0));
  }

  free(hostId: string): number {
    return (this.#capacity.get(hostId) ?? 0) - (this.#used.get(hostId) ?? 0);
  }

  residenceOf(vmId: string): string | undefined {
    return this.#residence.get(vmId);
  }

  /** The VMs on a host in listing order, as `xe vm-list resident-on=…` returns them. */
  residents(hostId: string): SnapshotVm[] {
    return this.#vms.filter((vm) => this.#residence.get(vm.id) === hostId);
  }

  move(vm: SnapshotVm, to: string): Migration {
    const from = this.#residence.get(vm.id) ?? vm.residentOn;
    this.#used.set(from, (this.#used.get(from) ?? 0) - vm.memory);
    this.#used.set(to, (this.#used.get(to) ?? 0) + vm.memory);
    this.#residence.set(vm.id, to);
    return { vmId: vm.id, vmName: vm.name, memory: vm.memory, from, to };
  }
}
