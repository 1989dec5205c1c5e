/** CloudStack objects as the bot uses them (camelCase; CloudStack's JSON names are all lowercase). */

/** The two states `updateCluster managedstate=` accepts (case-sensitive, Java `Enum.valueOf`). */
export type ManagedState = 'Managed' | 'Unmanaged';

/**
 * What `listClusters` may report: the two settable states plus the transient ones seen while
 * `updateCluster` runs or after it failed. Kept open so a newer server's value still reads.
 */
export type ManagedStateRead = ManagedState | 'PrepareUnmanaged' | 'PrepareUnmanagedError' | (string & {});

/** Host connection status (`state`), not to be confused with `resourceState`. */
export type HostStatus =
  | 'Creating'
  | 'Connecting'
  | 'Up'
  | 'Down'
  | 'Disconnected'
  | 'Alert'
  | 'Removed'
  | 'Error'
  | 'Rebalancing'
  | 'Unknown'
  | (string & {});

export interface CloudStackCluster {
  id: string;
  name: string;
  /** e.g. `XenServer`. */
  hypervisorType: string;
  managedState: ManagedStateRead;
  /** `Enabled` | `Disabled`. */
  allocationState: string;
  /** `CloudManaged` | `ExternalManaged`. */
  clusterType: string;
  podId: string;
  podName: string;
  zoneId: string;
  zoneName: string;
}

export interface CloudStackHost {
  id: string;
  name: string;
  /** The address the bot reaches the host's XAPI and SSH at. */
  ipAddress: string;
  state: HostStatus;
  /** `Enabled` | `Disabled` | `Maintenance` | `PrepareForMaintenance` | ... */
  resourceState: string;
  /** `Routing` for hypervisor hosts. */
  type: string;
  /** '' when CloudStack omits it (hosts outside a cluster, such as storage hosts). */
  clusterId: string;
  clusterName: string;
  /** e.g. `XenServer`; '' when CloudStack omits it (non-routing hosts). */
  hypervisor: string;
}
