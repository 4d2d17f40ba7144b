// cgroup v1 (hybrid hosts): one directory per sandbox in each of the memory, pids, cpu and freezer
// hierarchies, under <hierarchy>/wargate/<instance>. Killing freezes the cgroup, SIGKILLs every
// process in it (none can fork meanwhile), then thaws it so the kills take effect.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WargateError } from '../errors/catalog.js';
import { killQuietly } from './cgroup-v2.js';
import { childDirs, pidsIn, readNumber, removeDir, SANDBOX_NAME, waitUntil, write, writeIfPresent } from './cgroupfs.js';
import type { CgroupDriver, CgroupLimits, CgroupStats, SandboxCgroup } from './types.js';

export const V1_CONTROLLERS = ['memory', 'pids', 'cpu', 'freezer'] as const;
export type V1Mounts = Record<(typeof V1_CONTROLLERS)[number], string>;

export class CgroupV1Driver implements CgroupDriver {
  readonly version = 'v1';
  private readonly bases: V1Mounts;

  constructor(mounts: V1Mounts, instance: string) {
    this.bases = Object.fromEntries(V1_CONTROLLERS.map((c) => [c, join(mounts[c], 'wargate', instance)])) as V1Mounts;
    for (const dir of new Set(Object.values(this.bases))) mkdirSync(dir, { recursive: true });
  }

  create(name: string, limits: CgroupLimits): SandboxCgroup {
    const cg = this.open(name);
    for (const dir of cg.dirs) {
      try {
        mkdirSync(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new WargateError('WG_ERR_CGROUP', `cannot create ${dir}: ${(err as Error).message}`, { cause: err });
        }
      }
    }
    const { memory, pids, cpu } = cg.paths;
    write(memory, 'memory.limit_in_bytes', String(limits.memoryBytes));
    writeIfPresent(memory, 'memory.memsw.limit_in_bytes', String(limits.memoryBytes)); // no swap either
    write(pids, 'pids.max', String(limits.pids));
    // v2 weight 100 (even) is v1 shares 1024.
    write(cpu, 'cpu.shares', String(Math.max(2, Math.round((limits.cpuWeight * 1024) / 100))));
    return cg;
  }

  /** Every hierarchy is looked at: a gateway killed half-way through create() leaves only some. */
  list(): string[] {
    const names = new Set(Object.values(this.bases).flatMap(childDirs));
    return [...names].filter((n) => SANDBOX_NAME.test(n)).sort();
  }

  async close(): Promise<void> {
    for (const dir of new Set(Object.values(this.bases))) await removeDir(dir);
  }

  open(name: string): V1Cgroup {
    return new V1Cgroup(name, Object.fromEntries(V1_CONTROLLERS.map((c) => [c, join(this.bases[c], name)])) as V1Mounts);
  }
}

class V1Cgroup implements SandboxCgroup {
  constructor(
    readonly name: string,
    readonly paths: V1Mounts,
  ) {}

  /** Distinct directories (controllers may share a hierarchy, e.g. cpu,cpuacct). */
  get dirs(): string[] {
    return [...new Set(Object.values(this.paths))];
  }

  get procsFiles(): string[] {
    return this.dirs.map((d) => join(d, 'cgroup.procs'));
  }

  stats(): CgroupStats {
    return { memoryBytes: readNumber(this.paths.memory, 'memory.usage_in_bytes'), pids: readNumber(this.paths.pids, 'pids.current') };
  }

  async killAll(): Promise<void> {
    const freezer = this.paths.freezer;
    if (!existsSync(freezer)) {
      // Half-created (no process can have joined yet); kill whatever the others list anyway.
      for (const pid of new Set(this.dirs.flatMap(pidsIn))) killQuietly(pid);
      return;
    }
    write(freezer, 'freezer.state', 'FROZEN');
    await waitUntil(() => readFileSync(join(freezer, 'freezer.state'), 'utf8').trim() === 'FROZEN', 1000);
    for (const pid of new Set(this.dirs.flatMap(pidsIn))) killQuietly(pid);
    write(freezer, 'freezer.state', 'THAWED');
    if (!(await waitUntil(() => this.dirs.every((d) => pidsIn(d).length === 0), 2000))) {
      throw new WargateError('WG_ERR_CGROUP', `${freezer} still has processes 2 s after being killed`);
    }
  }

  async remove(): Promise<void> {
    for (const dir of this.dirs) await removeDir(dir);
  }
}
