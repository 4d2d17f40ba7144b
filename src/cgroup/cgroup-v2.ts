// cgroup v2: one directory per sandbox under <root>/wargate/<instance>, with memory.max (swap off),
// pids.max and cpu.weight. Killing uses cgroup.kill (Linux 5.14+), or freeze + SIGKILL + thaw.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WargateError } from '../errors/catalog.js';
import { childDirs, pidsIn, readNumber, removeDir, SANDBOX_NAME, waitUntil, write, writeIfPresent } from './cgroupfs.js';
import type { CgroupDriver, CgroupLimits, CgroupStats, SandboxCgroup } from './types.js';

export const V2_CONTROLLERS = ['memory', 'pids', 'cpu'];

export class CgroupV2Driver implements CgroupDriver {
  readonly version = 'v2';
  private readonly base: string;

  /** `root` is a cgroup2 mount whose cgroup.controllers offers memory, pids and cpu. */
  constructor(root: string, instance: string) {
    const top = join(root, 'wargate');
    this.base = join(top, instance);
    mkdirSync(this.base, { recursive: true });
    // Enable the controllers down our own branch only: the root (already enabled on systemd
    // hosts), wargate/ and wargate/<instance>/. Nothing else is written outside our subtree.
    for (const dir of [root, top, this.base]) {
      const enabled = readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
      const missing = V2_CONTROLLERS.filter((c) => !enabled.includes(c));
      if (missing.length > 0) write(dir, 'cgroup.subtree_control', missing.map((c) => `+${c}`).join(' '));
    }
  }

  create(name: string, limits: CgroupLimits): SandboxCgroup {
    const dir = join(this.base, name);
    try {
      mkdirSync(dir);
    } catch (err) {
      throw new WargateError('WG_ERR_CGROUP', `cannot create ${dir}: ${(err as Error).message}`, { cause: err });
    }
    write(dir, 'memory.max', String(limits.memoryBytes));
    writeIfPresent(dir, 'memory.swap.max', '0');
    write(dir, 'pids.max', String(limits.pids));
    write(dir, 'cpu.weight', String(limits.cpuWeight));
    return new V2Cgroup(name, dir);
  }

  list(): string[] {
    return childDirs(this.base).filter((n) => SANDBOX_NAME.test(n));
  }

  open(name: string): SandboxCgroup {
    return new V2Cgroup(name, join(this.base, name));
  }

  close(): Promise<void> {
    return removeDir(this.base);
  }
}

class V2Cgroup implements SandboxCgroup {
  constructor(
    readonly name: string,
    private readonly dir: string,
  ) {}

  get procsFiles(): string[] {
    return [join(this.dir, 'cgroup.procs')];
  }

  stats(): CgroupStats {
    return { memoryBytes: readNumber(this.dir, 'memory.current'), pids: readNumber(this.dir, 'pids.current') };
  }

  async killAll(): Promise<void> {
    if (!existsSync(this.dir)) return;
    if (existsSync(join(this.dir, 'cgroup.kill'))) {
      write(this.dir, 'cgroup.kill', '1');
    } else {
      write(this.dir, 'cgroup.freeze', '1');
      for (const pid of pidsIn(this.dir)) killQuietly(pid);
      write(this.dir, 'cgroup.freeze', '0');
    }
    if (!(await waitUntil(() => pidsIn(this.dir).length === 0, 2000))) {
      throw new WargateError('WG_ERR_CGROUP', `${this.dir} still has processes 2 s after being killed`);
    }
  }

  remove(): Promise<void> {
    return removeDir(this.dir);
  }
}

export function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
