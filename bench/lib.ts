// Small helpers shared by the benchmark scripts: argument parsing, percentiles, /proc readers.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import type { TestGateway } from '../test/helpers/gateway.js';
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
