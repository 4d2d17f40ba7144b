// Small helpers shared by the benchmark scripts: argument parsing, percentiles, /proc readers.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PYTHON } from '../test/helpers/clients.js';
import { REPO, type LogEntry, type TestGateway } from '../test/helpers/gateway.js';
import { assertNothingLeft } from '../test/helpers/leftovers.js';

/** `--name value` from argv, as a positive integer, or the default. */
export function intArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} needs a positive integer`);
  return n;
}

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

export function summary(values: number[]): { n: number; p50: number; p90: number; p99: number; min: number; max: number; mean: number } {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    min: Math.min(...values),
    max: Math.max(...values),
    mean: values.reduce((a, b) => a + b, 0) / values.length,
  };
}

export const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : String(n));
export const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : String(n));

export function summaryLine(label: string, values: number[]): string {
  if (values.length === 0) return `${label.padEnd(28)} (no samples)`;
  const s = summary(values);
  return (
    `${label.padEnd(28)} n=${String(s.n).padStart(3)}  p50 ${f1(s.p50).padStart(7)}  p90 ${f1(s.p90).padStart(7)}  ` +
    `p99 ${f1(s.p99).padStart(7)}  min ${f1(s.min).padStart(7)}  max ${f1(s.max).padStart(7)}  mean ${f1(s.mean).padStart(7)}  (ms)`
  );
}

/** /proc/meminfo, values in kB. */
export function meminfo(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const m = /^(\S+):\s+(\d+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** MemTotal - MemAvailable, kB. */
export function usedKb(m = meminfo()): number {
  return m.MemTotal - m.MemAvailable;
}

/** A field of /proc/PID/status in kB (VmRSS, VmHWM, ...), or NaN if the process is gone. */
export function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** /proc/PID/smaps_rollup, kB per field (Rss, Pss, Private_Clean, ...), or undefined if gone. */
export function smapsRollup(pid: number): Record<string, number> | undefined {
  try {
    const out: Record<string, number> = {};
    for (const line of readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n')) {
      const m = /^(\w+):\s+(\d+) kB/.exec(line);
      if (m) out[m[1]] = Number(m[2]);
    }
    return out;
  } catch {
    return undefined;
  }
}

export function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Which code was measured and on what load: the tree changes while benchmarks run. */
export function context(repo: string): string {
  let head = '?';
  try {
    head = execFileSync('git', ['-C', repo, 'log', '-1', '--format=%h %s'], { encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  return `HEAD ${head}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`;
}

/** Stops the gateway, reports whether anything was left behind, and sets the exit code. */
export async function finish(gw: TestGateway, failed: boolean): Promise<void> {
  await gw.stop();
  try {
    await assertNothingLeft(gw, 5000);
    console.log('\nleftovers: none');
  } catch (err) {
    failed = true;
    console.log(`\nleftovers: ${(err as Error).message}`);
  }
  gw.cleanup();
  process.exitCode = failed ? 1 : 0;
}

/** How many file descriptors a process holds (ls /proc/PID/fd | wc -l), or NaN if it is gone. */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/**
 * Follows a gateway's log from where it was when made: every new entry is handed to `onEntry`, in
 * order, every `intervalMs`. (TestGateway.waitFor scans the whole log on each call; a benchmark
 * that waits for thousands of events needs this instead.)
 */
export class LogTail {
  private index: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly gw: TestGateway,
    private readonly onEntry: (e: LogEntry) => void,
    intervalMs = 5,
  ) {
    this.index = gw.logs.length;
    this.timer = setInterval(() => this.drain(), intervalMs);
  }

  drain(): void {
    while (this.index < this.gw.logs.length) this.onEntry(this.gw.logs[this.index++]);
  }

  stop(): void {
    clearInterval(this.timer);
    this.drain();
  }
}

/**
 * The gateway's session events by client address, for benchmarks that give each login its own
 * loopback source address (the log names the address, not the port).
 */
export class SessionsByAddress {
  readonly starts = new Map<string, LogEntry>();
  readonly ends = new Map<string, LogEntry>();
  private readonly waiters = new Map<string, ((e: LogEntry) => void)[]>();
  private readonly tail: LogTail;

  constructor(gw: TestGateway) {
    this.tail = new LogTail(gw, (e) => this.handle(e));
  }

  private handle(e: LogEntry): void {
    const address = e.client as string | undefined;
    if (address === undefined) return;
    if (e.event === 'session.start') this.starts.set(address, e);
    else if (e.event === 'session.end') {
      this.ends.set(address, e);
      for (const w of this.waiters.get(address) ?? []) w(e);
      this.waiters.delete(address);
    }
  }

  /** The session.end of the login from `address`, or undefined after `timeoutMs`. */
  waitEnd(address: string, timeoutMs: number): Promise<LogEntry | undefined> {
    this.tail.drain();
    const seen = this.ends.get(address);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.set(address, (this.waiters.get(address) ?? []).filter((w) => w !== done));
        resolve(undefined);
      }, timeoutMs);
      const done = (e: LogEntry) => {
        clearTimeout(timer);
        resolve(e);
      };
      this.waiters.set(address, [...(this.waiters.get(address) ?? []), done]);
    });
  }

  /** Whether the gateway logged a session.start for `address` (the login was admitted). */
  started(address: string): boolean {
    this.tail.drain();
    return this.starts.has(address);
  }

  stop(): void {
    this.tail.stop();
  }
}

/** Counts of each value, as a compact JSON object. */
export function countBy<T>(items: T[], key: (t: T) => unknown): string {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(String(key(item)), (counts.get(String(key(item))) ?? 0) + 1);
  return JSON.stringify(Object.fromEntries([...counts.entries()].sort((a, b) => b[1] - a[1])));
}

/** One login timed by bench/paramiko_login.py (ms from the start of the TCP connect). */
export interface ParamikoLogin {
  i: number;
  error?: string;
  tcp: number;
  kex: number;
  auth: number;
  open: number;
  pty: number;
  shell: number;
  first: number;
  prompt: number;
  total: number;
}

/** COUNT sequential interactive logins by one /usr/bin/python3 running bench/paramiko_login.py. */
export async function paramikoLogins(gw: TestGateway, count: number, env: Record<string, string> = {}): Promise<ParamikoLogin[]> {
  const child = spawn(PYTHON, [join(REPO, 'bench/paramiko_login.py')], {
    env: { ...process.env, WG_PORT: String(gw.port), WG_USER: 'level0', WG_PASSWORD: gw.password('level0'), WG_COUNT: String(count), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const results: ParamikoLogin[] = [];
  for await (const line of createInterface({ input: child.stdout! })) {
    const r = JSON.parse(line) as ParamikoLogin & { done?: boolean };
    if (r.done) break;
    results.push(r);
  }
  const [code] = (await exited) as [number | null];
  if (code !== 0) throw new Error(`paramiko_login.py exited ${code}: ${stderr}`);
  return results;
}

/** utime + stime of a process in seconds, or NaN if it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
const CLOCK_TICKS = 100;
