// One small JSON record per live sandbox under <stateDir>/sandboxes: the host pid that holds its
// namespaces and that process's start time. A gateway that died leaves records behind; the next one
// kills what they name (only if pid and start time still match: never a recycled pid) and removes them.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { processStartTime, signalProcess } from './procfs.js';

interface SandboxRecord {
  pid: number;
  startTime: number;
}

const SUFFIX = '.json';

export class SandboxRecords {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  async write(id: string, pid: number): Promise<void> {
    const startTime = processStartTime(pid);
    if (startTime === undefined) return; // already gone: nothing to record
    const record: SandboxRecord = { pid, startTime };
    await writeFile(this.path(id), JSON.stringify(record), { mode: 0o600 });
  }

  async remove(id: string): Promise<void> {
    await rm(this.path(id), { force: true });
  }

  /** Kills and removes every recorded sandbox whose id is not in `live`; returns their ids. */
  async reapExcept(live: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const name of readdirSync(this.dir)) {
      const id = name.endsWith(SUFFIX) ? name.slice(0, -SUFFIX.length) : name;
      if (live.has(id)) continue;
      const record = this.read(name);
      // SIGKILL to the holder: PID 1 dies with it (parent-death signal), and the kernel takes the rest.
      if (record && processStartTime(record.pid) === record.startTime) signalProcess(record.pid, 'SIGKILL');
      await rm(join(this.dir, name), { force: true, recursive: true });
      removed.push(id);
    }
    return removed;
  }

  private read(name: string): SandboxRecord | undefined {
    try {
      const record = JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as Partial<SandboxRecord>;
      return Number.isInteger(record.pid) && Number.isInteger(record.startTime) ? (record as SandboxRecord) : undefined;
    } catch {
      return undefined;
    }
  }

  private path(id: string): string {
    return join(this.dir, id + SUFFIX);
  }
}
