// Proof that nothing of a sandbox is left: no process in any of its namespaces (this covers daemons
// that double-forked and host-side helpers that entered it), no host mount under the state dir, and
// no record in the state dir. Sandboxes are identified by the namespaces the gateway logged.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { instanceName } from '../../src/cgroup/detect.js';
import type { TestGateway } from './gateway.js';

/** Host pids of processes whose pid or mount namespace is one of `namespaces`. */
export function processesIn(namespaces: Set<string>, accept: (pid: number, ns: string) => boolean = () => true): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    for (const kind of ['pid', 'mnt']) {
      try {
        const ns = readlinkSync(`/proc/${entry}/ns/${kind}`);
        if (namespaces.has(ns) && accept(Number(entry), ns)) {
          found.push(Number(entry));
          break;
        }
      } catch {
        // the process ended while we looked
      }
    }
  }
  return found;
}

/**
 * The sandboxes that should be gone: all of them once the gateway has stopped; while it runs, all but
 * the games' daemons (a localhost service's or a challenge port's), which live as long as it does.
 */
function endedSandboxes(gw: TestGateway) {
  const players = gw.events('sandbox.start');
  return gatewayStopped(gw) ? [...players, ...daemonStarts(gw)] : players;
}

const daemonStarts = (gw: TestGateway) => gw.daemonLogs.filter((e) => e.event === 'sandbox.start');

/** Ids of the games' daemon sandboxes while the gateway runs (none once it has stopped). */
export function liveDaemons(gw: TestGateway): Set<string> {
  return new Set(gatewayStopped(gw) ? [] : daemonStarts(gw).map((e) => e.sandbox as string));
}

export function sandboxNamespaces(gw: TestGateway): Set<string> {
  const set = new Set<string>();
  for (const e of endedSandboxes(gw)) {
    set.add(e.pidns as string);
    set.add(e.mntns as string);
  }
  return set;
}

/**
 * Processes of this gateway's sandboxes: everything in their pid namespaces (pinned by TestGateway,
 * so the numbers are not reused), and the host-side helpers in their mount namespaces that descend
 * from the gateway. Mount namespace numbers can be reused by another gateway's sandboxes; the
 * ancestry check keeps those out (once the gateway is dead its helpers are orphans that cannot be
 * told apart from others' — they die with their sandbox's pid namespace, which is still checked).
 */
export function gatewaySandboxProcesses(gw: TestGateway): number[] {
  return processesIn(sandboxNamespaces(gw), (pid, ns) => ns.startsWith('pid:') || descendsFrom(pid, gw.proc.pid!));
}

export function descendsFrom(pid: number, ancestor: number): boolean {
  for (let p: number | undefined = pid, depth = 0; p !== undefined && p > 1 && depth < 16; depth++) {
    p = parentOf(p);
    if (p === ancestor) return true;
  }
  return false;
}

export function parentOf(pid: number): number | undefined {
  try {
    return Number(/PPid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
}

export function liveLeftovers(gw: TestGateway): string[] {
  const problems: string[] = [];
  const pids = gatewaySandboxProcesses(gw);
  if (pids.length > 0) problems.push(`processes still in sandbox namespaces: ${pids.map(describe).join(", ")}`);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(gw.stateDir));
  if (mounts.length > 0) problems.push(`host mounts under the state dir: ${mounts.join(' | ')}`);
  const daemons = liveDaemons(gw);
  const records = join(gw.stateDir, 'sandboxes');
  const left = (existsSync(records) ? readdirSync(records) : []).filter((name) => !daemons.has(name.replace(/\.json$/, '')));
  if (left.length > 0) problems.push(`sandbox records left: ${left.join(', ')}`);
  const cgroups = cgroupsOf(gw.stateDir, { sandboxesOnly: !gatewayStopped(gw) }).filter((dir) => !daemons.has(basename(dir)));
  if (cgroups.length > 0) problems.push(`cgroups left: ${cgroups.join(', ')}`);
  const mnt = join(gw.stateDir, 'mnt');
  if (existsSync(mnt) && readdirSync(mnt).length > 0) problems.push('the shared mount point is not empty');
  return problems;
}

/** Waits up to `withinMs` for every sandbox the gateway started to be entirely gone. */
export async function assertNothingLeft(gw: TestGateway, withinMs = 1000): Promise<void> {
  const deadline = Date.now() + withinMs;
  let problems = liveLeftovers(gw);
  while (problems.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    problems = liveLeftovers(gw);
  }
  assert.deepEqual(problems, [], `leftovers after ${withinMs} ms`);
}

/** How many processes are in the sandbox namespaces right now (for tests that expect some). */
export function countSandboxProcesses(gw: TestGateway): number {
  return gatewaySandboxProcesses(gw).length;
}

function describe(pid: number): string {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    const ppid = /PPid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    const state = /State:\s+(.*)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return `${pid} (ppid ${ppid}, ${state}: ${cmd.slice(0, 80)})`;
  } catch {
    return String(pid);
  }
}

const gatewayStopped = (gw: TestGateway) => gw.proc.exitCode !== null || gw.proc.signalCode !== null;

/**
 * This state dir's cgroups in every hierarchy (/sys/fs/cgroup/.../wargate/<instance>): its sandbox
 * cgroups, and (unless sandboxesOnly, for a live gateway) the instance directory itself.
 */
export function cgroupsOf(stateDir: string, { sandboxesOnly = false } = {}): string[] {
  const instance = instanceName(stateDir);
  const found: string[] = [];
  for (const hierarchy of readdirSync('/sys/fs/cgroup').map((h) => join('/sys/fs/cgroup', h))) {
    const dir = join(hierarchy, 'wargate', instance);
    if (!existsSync(dir)) continue;
    if (!sandboxesOnly) found.push(dir);
    for (const child of readdirSync(dir, { withFileTypes: true })) if (child.isDirectory()) found.push(join(dir, child.name));
  }
  return found;
}
