// The sandbox backend built on Linux namespaces: sandbox-init (a small C program of ours) makes the
// namespaces, builds the root filesystem inside them and holds them, and its PID 1 is the parent of
// every player process; sandbox-spawn (ours too) starts each of them as the level user, under a
// seccomp filter. It owns <stateDir>/sandboxes (one record per live sandbox) and <stateDir>/mnt (an empty
// mount point that every sandbox mounts over in its own namespace). It never mounts on the host.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readlinkSync } from 'node:fs';
import { isIP } from 'node:net';
import { createInterface } from 'node:readline';
import type { Duplex, Writable } from 'node:stream';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { WargateError } from '../errors/catalog.js';
import { constants as osConstants } from 'node:os';
import { spawnPipeProcess } from './pipe-process.js';
import { signalProcess } from './procfs.js';
import { devptsOf, spawnPtyProcess } from './pty-process.js';
import type { ProgramReaper } from './sandbox-spawn.js';
import { SandboxRecords } from './records.js';
import { detachHostMountsUnder } from './host-mounts.js';
import { RelayServer } from './relay-server.js';
import { SANDBOX_ROOT_ID } from './ids.js';
import type { CgroupDriver, SandboxCgroup } from '../cgroup/types.js';
import type { ExitStatus, Peer, ProcessSpec, Sandbox, SandboxBackend, SandboxListener, SandboxProcess, SandboxSpec, SandboxStats } from './types.js';

const START_TIMEOUT_MS = 10_000;
/** How long a connect from inside a sandbox may take before the client is told it failed. */
const CONNECT_TIMEOUT_MS = 15_000;

/** Built by `npm run build` next to the compiled JavaScript (dist/sandbox-init). */
export const SANDBOX_INIT = fileURLToPath(new URL('../../sandbox-init', import.meta.url));

export interface NamespaceBackendOptions {
  stateDir: string;
  logger: Logger;
  cgroups: CgroupDriver;
}

export class NamespaceBackend implements SandboxBackend {
  private readonly records: SandboxRecords;
  private readonly mountPoint: string;
  private readonly live = new Set<string>();
  private readonly relay: RelayServer;

  constructor(private readonly options: NamespaceBackendOptions) {
    this.records = new SandboxRecords(join(options.stateDir, 'sandboxes'));
    this.relay = new RelayServer(options.stateDir);
    this.mountPoint = join(options.stateDir, 'mnt');
    mkdirSync(this.mountPoint, { recursive: true, mode: 0o700 });
    assertSafeForMountOptions(this.mountPoint);
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    spec.layers.forEach(assertSafeForMountOptions);
    const started = performance.now();
    this.live.add(spec.id);
    let cgroup: SandboxCgroup;
    try {
      cgroup = this.options.cgroups.create(spec.id, spec.limits);
    } catch (err) {
      await this.forget(spec.id);
      throw err;
    }
    // sandbox-init joins the cgroup before it forks, dies with the gateway, and holds PID 1
    // (see src/sandbox/sandbox-init.c). fd 0 is PID 1's lifeline, fd 3 the holder's requests.
    await this.relay.ready;
    const child = spawn(SANDBOX_INIT, [], {
      argv0: 'wargate-sandbox',
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      env: {
        WG_CGROUP_PROCS: cgroup.procsFiles.join(':'),
        WG_RELAY_SOCK: this.relay.path,
        WG_ROOT_ID: String(SANDBOX_ROOT_ID),
        WG_MNT: this.mountPoint,
        WG_HOST: spec.hostname,
        WG_SIZE: spec.limits.writableSize,
        WG_INODES: String(spec.limits.writableInodes),
        WG_LOWER: spec.layers.join(':'),
        WG_HOST_USR: spec.hostUsr ? '1' : '0',
      },
    });
    child.stdin!.on('error', () => {});
    try {
      const nsPid = await waitForReady(child);
      await this.records.write(spec.id, child.pid!);
      // Read now, before any player program runs in it (see pty-process.ts).
      const devpts = devptsOf(nsPid);
      const sandbox = new NamespaceSandbox(spec.id, child, nsPid, devpts, cgroup, this.relay, () => this.forget(spec.id));
      this.options.logger.info(
        {
          event: 'sandbox.start',
          sandbox: spec.id,
          purpose: spec.purpose,
          holderPid: child.pid,
          nsPid,
          // The namespaces' identities, so an operator (or a test) can prove nothing of them is left.
          pidns: readlinkSync(`/proc/${nsPid}/ns/pid`),
          mntns: readlinkSync(`/proc/${nsPid}/ns/mnt`),
          ms: Math.round(performance.now() - started),
        },
        'sandbox started',
      );
      return sandbox;
    } catch (err) {
      await removeCgroup(cgroup);
      await this.forget(spec.id);
      throw err;
    }
  }

  /**
   * Records, cgroups and host mounts that no live sandbox of this gateway owns: killed and removed.
   * Returns how many sandboxes (distinct ids) and stray host mounts that was.
   */
  async reap(): Promise<number> {
    const removed = new Set(await this.records.reapExcept(this.live));
    for (const name of this.options.cgroups.list()) {
      if (this.live.has(name)) continue;
      await removeCgroup(this.options.cgroups.open(name));
      removed.add(name);
    }
    return removed.size + detachHostMountsUnder(this.options.stateDir);
  }

  async close(): Promise<void> {
    await this.relay.close();
    await this.options.cgroups.close();
  }

  /** The record goes first: while it exists the id stays live, so the reaper never counts it. */
  private async forget(id: string): Promise<void> {
    await this.records.remove(id);
    this.live.delete(id);
  }
}

/** Overlay and tmpfs options are comma- and colon-separated: a path holding either would be misread. */
function assertSafeForMountOptions(path: string): void {
  if (!/^\/[A-Za-z0-9._/+@-]*$/.test(path)) {
    throw new WargateError('WG_ERR_STATE_DIR', `path "${path}" may only hold letters, digits and . _ / + @ - (it is used in mount options)`);
  }
}

/** Resolves with PID 1's host pid once the holder's first line, "ready PID", has come. */
async function waitForReady(child: ChildProcess): Promise<number> {
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const lines = createInterface({ input: child.stdout! });
  return new Promise<number>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      lines.close();
      reject(new WargateError('WG_ERR_SANDBOX_START', `sandbox did not start: ${why}${stderr ? `: ${stderr.trim()}` : ''}`));
    };
    const timer = setTimeout(() => fail(`no ready signal within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    child.once('error', (err) => fail(err.message));
    // 'close', not 'exit': PID 1's error line may still be on its way when the holder has exited.
    child.once('close', (code, signal) => fail(`sandbox-init exited (${signal ?? code})`));
    lines.once('line', (line) => {
      const m = /^ready (\d+)$/.exec(line);
      if (!m) return fail(`unexpected line "${line.slice(0, 100)}"`);
      clearTimeout(timer);
      child.removeAllListeners('close');
      lines.close();
      resolve(Number(m[1]));
    });
  });
}

/** Kills whatever is left in a sandbox's cgroup and removes it. */
async function removeCgroup(cgroup: SandboxCgroup): Promise<void> {
  await cgroup.killAll();
  await cgroup.remove();
}

/** Signal numbers by name and back, for PID 1's lines ("exited PID signal 9") and requests. */
const SIGNALS = osConstants.signals as Record<string, number>;
const SIGNAL_NAMES = new Map(Object.entries(SIGNALS).map(([name, n]) => [n, name.replace(/^SIG/, '')]));

class NamespaceSandbox implements Sandbox, ProgramReaper {
  readonly ended: Promise<void>;
  private gone = false;
  /** Programs PID 1 watches for us, by their pid in the sandbox: who waits for each one's status. */
  private readonly watched = new Map<number, (status: ExitStatus) => void>();
  /** The holder's request pipe (sandbox-net.c). */
  private readonly control: Writable;
  /** Relay tokens handed out for this sandbox, and the answers awaited for listen requests. */
  private readonly tokens = new Set<string>();
  private readonly answers = new Map<string, (words: string[]) => void>();

  constructor(
    readonly id: string,
    private readonly child: ChildProcess,
    /** Host pid of the sandbox's PID 1, whose namespaces sandbox-spawn enters. */
    private readonly nsPid: number,
    /** Its devpts instance (st_dev), where every terminal of the sandbox must come from. */
    private readonly devpts: number,
    private readonly cgroup: SandboxCgroup,
    private readonly relay: RelayServer,
    onEnd: () => Promise<void>,
  ) {
    this.control = child.stdio[3] as Writable;
    this.control.on('error', () => {});
    // The holder's answers and PID 1's reports share this pipe, a line each.
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const [kind, token, ...rest] = line.split(' ');
      if (kind === 'listening' || kind === 'failed') this.answers.get(token)?.([kind, ...rest]);
      else if (kind === 'exited') this.reaped(Number(token), rest);
    });
    // However the sandbox ends (destroy, or its PID 1 killed by OOM or by hand), the cgroup takes
    // what is left (host-side helpers included), then goes, then the record.
    this.ended = new Promise<void>((resolve) => {
      child.once('exit', () => {
        this.gone = true;
        // Everything in the pid namespace died with its PID 1.
        for (const settle of this.watched.values()) settle({ signal: 'KILL', coreDumped: false });
        this.watched.clear();
        for (const token of this.tokens) relay.forget(token);
        for (const answer of this.answers.values()) answer(['failed', 'the sandbox has ended']);
        void removeCgroup(cgroup).finally(() => onEnd().then(resolve, resolve));
      });
    });
  }

  async listen(address: string, port: number, onConnection: (socket: Duplex, peer: Peer) => void): Promise<SandboxListener> {
    this.checkEndpoint(address, port, 0);
    const token = this.relay.expect((socket, [peerAddress, peerPort]) => onConnection(socket, { address: peerAddress, port: Number(peerPort) }));
    this.tokens.add(token);
    const close = () => {
      if (!this.tokens.delete(token)) return;
      this.relay.forget(token);
      if (!this.gone) this.control.write(`unlisten ${token}\n`);
    };
    const [kind, ...rest] = await new Promise<string[]>((resolve) => {
      this.answers.set(token, resolve);
      this.control.write(`listen ${token} ${address} ${port}\n`);
    });
    this.answers.delete(token);
    if (kind !== 'listening') {
      close();
      throw new WargateError('WG_ERR_FORWARD', `cannot listen on ${address}:${port} in sandbox ${this.id}: ${rest.join(' ')}`);
    }
    return { port: Number(rest[0]), close };
  }

  connect(address: string, port: number): Promise<Duplex> {
    this.checkEndpoint(address, port, 1);
    return new Promise<Duplex>((resolve, reject) => {
      const done = (err: Error | undefined, socket?: Duplex) => {
        clearTimeout(timer);
        this.tokens.delete(token);
        this.relay.forget(token);
        if (err) reject(err);
        else resolve(socket!);
      };
      const token = this.relay.expect((socket, [status, ...reason]) => {
        if (status === 'ok') return done(undefined, socket);
        socket.destroy();
        done(new WargateError('WG_ERR_FORWARD', `connect to ${address}:${port} in sandbox ${this.id}: ${reason.join(' ')}`));
      });
      this.tokens.add(token);
      const timer = setTimeout(() => done(new WargateError('WG_ERR_FORWARD', `connect to ${address}:${port} timed out`)), CONNECT_TIMEOUT_MS);
      void this.ended.then(() => done(new WargateError('WG_ERR_SANDBOX_GONE', `sandbox ${this.id} has ended`)));
      this.control.write(`connect ${token} ${address} ${port}\n`);
    });
  }

  /** Requests go to the holder as words on a line: only numeric addresses and ports get there. */
  private checkEndpoint(address: string, port: number, lowestPort: number): void {
    if (this.gone) throw new WargateError('WG_ERR_SANDBOX_GONE', `sandbox ${this.id} has ended`);
    if (!isIP(address) || !Number.isInteger(port) || port < lowestPort || port > 65535) {
      throw new WargateError('WG_ERR_FORWARD', `not a numeric address and port: ${JSON.stringify(address)} ${port}`);
    }
  }

  watch(pid: number): Promise<ExitStatus> {
    if (this.gone) return Promise.resolve({ signal: 'KILL', coreDumped: false });
    return new Promise((resolve) => {
      this.watched.set(pid, resolve);
      this.child.stdin!.write(`watch ${pid}\n`);
    });
  }

  kill(pid: number, signal: string): void {
    const n = SIGNALS[`SIG${signal}`];
    if (this.gone || n === undefined || !this.watched.has(pid)) return;
    this.child.stdin!.write(`kill ${pid} ${n}\n`);
  }

  /** PID 1's "exited PID code N" or "exited PID signal N [core]". */
  private reaped(pid: number, [how, value, core]: string[]): void {
    const settle = this.watched.get(pid);
    if (!settle) return;
    this.watched.delete(pid);
    const n = Number(value);
    if (how === 'code') settle({ code: n });
    else settle({ signal: SIGNAL_NAMES.get(n) ?? String(n), coreDumped: core === 'core' });
  }

  stats(): SandboxStats {
    return this.cgroup.stats();
  }

  get pid(): number {
    return this.child.pid!;
  }

  async spawn(spec: ProcessSpec): Promise<SandboxProcess> {
    if (this.gone) throw new WargateError('WG_ERR_SANDBOX_GONE', `sandbox ${this.id} has ended`);
    const { user } = spec;
    // Who runs inside; sandbox-spawn sets these ids itself (and the seccomp filter).
    const ids = { uid: user.uid, gid: user.gid, groups: [user.gid, ...user.groups.filter((g) => g !== user.gid)] };
    const env: Record<string, string> = {
      ...spec.env,
      HOME: user.home,
      USER: user.name,
      LOGNAME: user.name,
      SHELL: '/bin/sh',
      WG_SHELL: user.shell,
      WG_MODE: spec.command === undefined ? 'login' : 'exec',
      WG_CMD: spec.command ?? '',
      // Read and removed by sandbox-launch.c, which sets RLIMIT_CPU before it starts the shell.
      ...(spec.cpuSeconds !== undefined && { WG_RLIMIT_CPU: String(spec.cpuSeconds) }),
      // Read and removed by the helper: it joins the sandbox's cgroup before anything else.
      WG_CGROUP_PROCS: this.cgroup.procsFiles.join(':'),
    };
    if (spec.pty) env.TERM = spec.pty.term;
    if (!spec.pty) return spawnPipeProcess(this.nsPid, ids, env);
    return spawnPtyProcess(env, { nsPid: this.nsPid, devpts: this.devpts, user: ids, size: spec.pty, reaper: this });
  }

  async destroy(): Promise<void> {
    if (!this.gone) {
      // Closing the lifeline ends PID 1; SIGKILL makes it immediate. The kernel then kills every
      // process left in the pid namespace, and the mounts go with the mount namespace. The holder
      // is left to reap PID 1 and exit, so `ended` means all of it is gone (killing the holder first
      // would orphan PID 1 to the host's init, to be reaped whenever that gets to it).
      this.child.stdin!.destroy();
      signalProcess(this.nsPid, 'SIGKILL');
    }
    await this.ended;
  }
}
