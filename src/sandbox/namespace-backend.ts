// The sandbox backend built on Linux namespaces: sandbox-init (a small C program of ours) makes the
// namespaces, builds the root filesystem inside them and holds them; nsenter or pty-relay, then
// setpriv, start each player process as the level user. It owns <stateDir>/sandboxes (one record per live sandbox) and <stateDir>/mnt (an empty
// mount point that every sandbox mounts over in its own namespace). It never mounts on the host.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { WargateError } from '../errors/catalog.js';
import { LAUNCH_SCRIPT, PLAIN_ARGV, PTY_ARGV } from './launch-script.js';
import { spawnPipeProcess } from './pipe-process.js';
import { signalProcess } from './procfs.js';
import { spawnPtyProcess } from './pty-process.js';
import { SandboxRecords } from './records.js';
import { joinCgroup } from './cgroup-join.js';
import { detachHostMountsUnder } from './host-mounts.js';
import type { CgroupDriver, SandboxCgroup } from '../cgroup/types.js';
import type { ProcessSpec, Sandbox, SandboxBackend, SandboxProcess, SandboxSpec, SandboxStats } from './types.js';

const START_TIMEOUT_MS = 10_000;

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

  constructor(private readonly options: NamespaceBackendOptions) {
    this.records = new SandboxRecords(join(options.stateDir, 'sandboxes'));
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
    // (see src/sandbox/sandbox-init.c). fd 0 is PID 1's lifeline.
    const child = spawn(SANDBOX_INIT, [], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        WG_CGROUP_PROCS: cgroup.procsFiles.join(':'),
        WG_MNT: this.mountPoint,
        WG_HOST: spec.hostname,
        WG_SIZE: spec.limits.writableSize,
        WG_INODES: String(spec.limits.writableInodes),
        WG_LOWER: spec.layers.join(':'),
      },
    });
    child.stdin!.on('error', () => {});
    try {
      const nsPid = await waitForReady(child);
      await this.records.write(spec.id, child.pid!);
      const sandbox = new NamespaceSandbox(spec.id, child, nsPid, cgroup, this.options.logger, () => this.forget(spec.id));
      this.options.logger.info(
        {
          event: 'sandbox.start',
          sandbox: spec.id,
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

async function waitForReady(child: ChildProcess): Promise<number> {
  let stdout = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  return new Promise<number>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new WargateError('WG_ERR_SANDBOX_START', `sandbox did not start: ${why}${stderr ? `: ${stderr.trim()}` : ''}`));
    };
    const timer = setTimeout(() => fail(`no ready signal within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    child.once('error', (err) => fail(err.message));
    // 'close', not 'exit': PID 1's error line may still be on its way when the holder has exited.
    child.once('close', (code, signal) => fail(`sandbox-init exited (${signal ?? code})`));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const m = /^ready (\d+)\n/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('close');
        resolve(Number(m[1]));
      }
    });
  });
}

/** Kills whatever is left in a sandbox's cgroup and removes it. */
async function removeCgroup(cgroup: SandboxCgroup): Promise<void> {
  await cgroup.killAll();
  await cgroup.remove();
}

class NamespaceSandbox implements Sandbox {
  readonly ended: Promise<void>;
  private gone = false;

  constructor(
    readonly id: string,
    private readonly child: ChildProcess,
    /** Host pid of the sandbox's PID 1, the target of nsenter. */
    private readonly nsPid: number,
    private readonly cgroup: SandboxCgroup,
    private readonly logger: Logger,
    onEnd: () => Promise<void>,
  ) {
    // However the sandbox ends (destroy, or its PID 1 killed by OOM or by hand), the cgroup takes
    // what is left (host-side helpers included), then goes, then the record.
    this.ended = new Promise<void>((resolve) => {
      child.once('exit', () => {
        this.gone = true;
        void removeCgroup(cgroup).finally(() => onEnd().then(resolve, resolve));
      });
    });
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
    // What runs inside, as the level user: setpriv, then the launcher (under setsid with a pty).
    const inside = [
      '/usr/bin/setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`,
      `--groups=${[user.gid, ...user.groups.filter((g) => g !== user.gid)].join(',')}`,
      '--inh-caps=-all', '--',
      ...(spec.pty ? PTY_ARGV : PLAIN_ARGV),
    ];
    const env: Record<string, string> = {
      ...spec.env,
      HOME: user.home,
      USER: user.name,
      LOGNAME: user.name,
      SHELL: '/bin/sh',
      WG_SHELL: user.shell,
      WG_MODE: spec.command === undefined ? 'login' : 'exec',
      WG_CMD: spec.command ?? '',
      WG_LAUNCH: LAUNCH_SCRIPT,
    };
    if (spec.pty) env.TERM = spec.pty.term;
    const join = (command: string[]) => joinCgroup(this.cgroup.procsFiles, command);
    if (!spec.pty) {
      // nsenter enters PID 1's namespaces and root; --wd without a value takes PID 1's cwd (/ inside),
      // where a path would be opened on the host.
      const nsenter = ['/usr/bin/nsenter', `--target=${this.nsPid}`, '--mount', '--uts', '--ipc', '--net', '--pid', '--root', '--wd'];
      return spawnPipeProcess(join([...nsenter, ...inside]), env);
    }
    // With a pty, the relay enters the namespaces itself (one process less than nsenter + relay).
    return spawnPtyProcess(inside, env, {
      nsPid: this.nsPid,
      owner: user.uid,
      size: spec.pty,
      wrap: join,
      onRelayError: (message) =>
        this.logger.error({ event: 'pty.relay_failed', code: 'WG_ERR_PROCESS_START', sandbox: this.id, message }, 'pty relay failed'),
    });
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
