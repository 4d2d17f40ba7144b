// One interface over cgroup v2 (production hosts) and v1 (hybrid hosts): a cgroup per sandbox,
// created only under wargate's own subtree (<hierarchy>/wargate/<instance>/<sandbox>), never
// touching any other cgroup. <instance> is derived from the state dir, so two gateways on one host
// never reap each other's sandboxes.

export interface CgroupLimits {
  memoryBytes: number;
  pids: number;
  /** cgroup v2 weight (1-10000, 100 even); v1 gets the matching cpu.shares. */
  cpuWeight: number;
}

export interface CgroupStats {
  memoryBytes: number;
  pids: number;
}

export interface SandboxCgroup {
  readonly name: string;
  /** A process joins by writing its pid to each of these, before it forks anything. */
  readonly procsFiles: string[];
  stats(): CgroupStats;
  /** Kills every process in the cgroup; resolves once it is empty. */
  killAll(): Promise<void>;
  /** Removes the (empty) cgroup. */
  remove(): Promise<void>;
}

export interface CgroupDriver {
  readonly version: 'v1' | 'v2';
  /** Creates a sandbox's cgroup with its limits applied. */
  create(name: string, limits: CgroupLimits): SandboxCgroup;
  /** Names of the sandbox cgroups that exist under this instance's subtree. */
  list(): string[];
  /** An existing sandbox cgroup (for the reaper). */
  open(name: string): SandboxCgroup;
  /** Removes this instance's (empty) subtree, at a clean stop. */
  close(): Promise<void>;
}
