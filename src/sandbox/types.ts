// The contract between sessions and a sandbox backend. A backend owns isolation and lifetime;
// sessions own nothing but the handles returned here. Every backend must pass
// test/sandbox-conformance.test.ts.
import type { Duplex, Readable, Writable } from 'node:stream';

/** Who runs inside: one level of one game. */
export interface SandboxUser {
  name: string;
  uid: number;
  gid: number;
  /** Supplementary groups (the level's own gid is always included). */
  groups: number[];
  home: string;
  shell: string;
}

export interface SandboxSpec {
  /** Unique id, also the name of the sandbox's record in the state dir. */
  id: string;
  /** What it is for, as logged: a player's login, a challenge connection, or a game's daemon. */
  purpose: 'session' | 'challenge' | 'daemon';
  hostname: string;
  /** Read-only layers, top first: the game layer, then its base's (src/games/base-layers.ts). */
  layers: string[];
  /**
   * Bind the host's /usr read-only over the root: the game's base is the host's. False for a game
   * on a directory or image base, whose layers bring their own system.
   */
  hostUsr: boolean;
  limits: ResourceLimits;
}

export interface ResourceLimits {
  /** Memory of all processes, the writable layer and charged kernel memory, in bytes. */
  memoryBytes: number;
  /** Processes and threads at once. */
  pids: number;
  /** CPU share against other sandboxes, as a cgroup v2 weight (1-10000, 100 even). */
  cpuWeight: number;
  /** Cap of the writable layer, as tmpfs size= ("64m"), and its inode count. */
  writableSize: string;
  writableInodes: number;
}

export interface SandboxStats {
  memoryBytes: number;
  pids: number;
}

export interface PtySpec {
  term: string;
  cols: number;
  rows: number;
}

export interface ProcessSpec {
  user: SandboxUser;
  /** A command run by the user's shell with -c; undefined: the login shell itself. */
  command?: string;
  pty?: PtySpec;
  /** Extra environment (already filtered by the caller). */
  env: Record<string, string>;
  /** CPU seconds each of its processes may use (RLIMIT_CPU, soft and hard: SIGXCPU, then SIGKILL a second later). */
  cpuSeconds?: number;
}

export type ExitStatus = { code: number } | { signal: string; coreDumped: boolean };

export interface SandboxProcess {
  /** Player input. For a pty, bytes go to the terminal; end() is ignored as by OpenSSH. */
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** Separate only without a pty. */
  readonly stderr: Readable | null;
  /** Settles once the process has exited and its output has been read to the end. */
  readonly exited: Promise<ExitStatus>;
  /** MUST NOT block; ignored once exited or without a pty. */
  resize(cols: number, rows: number): void;
  /** Delivers a signal (name without SIG) to the process inside the sandbox. */
  signal(name: string): void;
  /** The client went away: hang up as a closed terminal or sshd would (SIGHUP, input closed). */
  hangup(): void;
}

export interface Sandbox {
  readonly id: string;
  /** Host pid of the process that holds the namespaces (for diagnostics and tests). */
  readonly pid: number;
  /** Settles when the sandbox has ended, however it ended. */
  readonly ended: Promise<void>;
  /** Starts a process in the sandbox as the user. MUST reject with WG_ERR_SANDBOX_GONE once ended. */
  spawn(spec: ProcessSpec): Promise<SandboxProcess>;
  /**
   * Listens on a numeric ADDRESS:PORT (0: any free port) inside the sandbox's network namespace and
   * hands over every connection accepted there. Rejects with WG_ERR_FORWARD if the port is taken.
   */
  listen(address: string, port: number, onConnection: (socket: Duplex, peer: Peer) => void): Promise<SandboxListener>;
  /** Connects to a numeric ADDRESS:PORT from inside the sandbox's network namespace. Rejects with WG_ERR_FORWARD. */
  connect(address: string, port: number): Promise<Duplex>;
  /** Current use, from its cgroup. MUST NOT block beyond a few file reads. */
  stats(): SandboxStats;
  /** Kills every process of the sandbox and frees its memory; resolves once gone. Idempotent. */
  destroy(): Promise<void>;
}

/** The other end of a connection accepted inside a sandbox. */
export interface Peer {
  address: string;
  port: number;
}

export interface SandboxListener {
  /** The port bound (the one asked for, or the one chosen for port 0). */
  readonly port: number;
  /** Stops listening; connections already accepted go on. Idempotent. */
  close(): void;
}

export interface SandboxBackend {
  /** Creates a sandbox; resolves once it can run processes. */
  create(spec: SandboxSpec): Promise<Sandbox>;
  /** Removes whatever earlier runs left behind that no live sandbox owns. Returns how many were removed. */
  reap(): Promise<number>;
  /** Releases what the backend itself holds (after every sandbox has been destroyed). */
  close(): Promise<void>;
}
