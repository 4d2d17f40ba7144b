// Small readers of /proc used to identify processes wargate started (pid plus start time, so a
// recycled pid is never mistaken for ours), to find a process's children, and a signal that
// tolerates a process already gone.
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

/** Host pids of the direct children of `pid` (a scan of /proc: for rare events and tests only). */
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
