// Small readers of /proc used to identify processes wargate started (pid plus start time, so a
// recycled pid is never mistaken for ours) and to find a process's children.
import { readFileSync, readdirSync } from 'node:fs';

interface ProcStat {
  ppid: number;
  startTime: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), startTime: Number(fields[19]) };
}

/** Start time of a process in clock ticks since boot, or undefined if it does not exist. */
export function processStartTime(pid: number): number | undefined {
  return readStat(pid)?.startTime;
}

/** Host pids of the direct children of `pid` (a scan of /proc: for rare events only). */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const child = Number(entry);
    if (Number.isInteger(child) && readStat(child)?.ppid === pid) children.push(child);
  }
  return children;
}

/** Sends a signal; a process that is already gone is not an error. */
export function signalProcess(pid: number, signal: NodeJS.Signals | number): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/**
 * Hangs up the in-sandbox side of a host-side sandbox-exec: SIGHUP to its children now and every 100 ms
 * until `ended` settles. One signal is not enough: a child that is still starting (not yet forked,
 * or with SIGHUP still ignored on its way to the program) would miss it.
 */
export function hangUpChildren(pid: number, ended: Promise<unknown>): void {
  const hup = () => {
    for (const child of childrenOf(pid)) signalProcess(child, 'SIGHUP');
  };
  hup();
  const timer = setInterval(hup, 100).unref();
  void ended.finally(() => clearInterval(timer));
}
