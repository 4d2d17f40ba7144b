// Small helpers over cgroupfs files, shared by the v1 and v2 drivers.
import { existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WargateError } from '../errors/catalog.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function write(dir: string, file: string, value: string): void {
  try {
    writeFileSync(join(dir, file), value);
  } catch (err) {
    throw new WargateError('WG_ERR_CGROUP', `cannot write ${value.trim()} to ${join(dir, file)}: ${(err as Error).message}`, { cause: err });
  }
}

/** Writes only if the file exists (optional knobs such as memory.swap.max). */
export function writeIfPresent(dir: string, file: string, value: string): void {
  if (existsSync(join(dir, file))) write(dir, file, value);
}

export function readNumber(dir: string, file: string): number {
  try {
    return Number(readFileSync(join(dir, file), 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

export function pidsIn(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function childDirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
}

/** Polls until `done()` or the deadline; returns whether it got there. */
export async function waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** rmdir of an emptied cgroup; the kernel may report it busy for a moment after the last exit. */
export async function removeDir(dir: string): Promise<void> {
  const deadline = Date.now() + 2000;
  for (;;) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || Date.now() > deadline) {
        throw new WargateError('WG_ERR_CGROUP', `cannot remove ${dir}: ${(err as Error).message}`, { cause: err });
      }
      await sleep(10);
    }
  }
}

/** Sandbox ids are hex; anything else under our subtree was not made by us and is left alone. */
export const SANDBOX_NAME = /^[0-9a-z]{1,64}$/;
