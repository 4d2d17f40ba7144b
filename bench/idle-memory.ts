// Host memory per idle interactive session.
//
//   node dist/bench/idle-memory.js [--sessions 100] [--probe N] [--client-poll SECONDS]
//
// A gateway is started; ONE /usr/bin/python3 process (bench/paramiko_idle.py, started through
// bench/paramiko_idle_spread.py: 16 connections per loopback source address 127.2.x.y, as the
// gateway admits at most admission.maxPerAddress = 20 sandboxes per address) imports paramiko and
// waits. After 2 s: baseline (MemTotal - MemAvailable, gateway VmRSS, client VmRSS, a few kernel
// counters). The client then opens SESSIONS interactive shells (pty + shell) one after the other and
// keeps them idle once every prompt has arrived; 5 s to settle (no cache dropping); measured again.
// Printed: used-memory delta per session (raw, and minus the client's own RSS growth), gateway RSS
// delta per session, client RSS delta, CPU of gateway and client during the settle, and the
// processes found in the sandboxes' pid/mount namespaces (from the 'sandbox.start' log events):
// count per session and Pss / private memory per session from /proc/PID/smaps_rollup.
// With --probe N, while every session is still open: N new interactive logins one after the other
// (bench/paramiko_login.py, one more before them as a warm-up, not counted), timed from the TCP
// connect to the first byte and to the prompt. The gateway is given admission.maxSandboxes =
// SESSIONS + N + 10 if that is over its default of 1000.
// --client-poll (diagnostic): each idle paramiko Transport's reader thread wakes every SECONDS
// instead of every 0.1 s, so the client takes less of the CPU it shares with the gateway.
// Then everything is closed, the gateway stopped, and nothing may be left. Figures only: no asserts
// on them. The host is shared: used memory is noisy.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PYTHON } from '../test/helpers/clients.js';
import { REPO, TestGateway } from '../test/helpers/gateway.js';
import { childrenOf } from '../src/sandbox/procfs.js';
import { gatewaySandboxProcesses } from '../test/helpers/leftovers.js';
import { commOf, context, countBy, cpuSeconds, f1, f2, finish, intArg, meminfo, paramikoLogins, sleep, smapsRollup, statusKb, summaryLine, usedKb } from './lib.js';

interface Snapshot {
  mem: Record<string, number>;
  used: number;
  gatewayRss: number;
  clientRss: number;
  /** The client's kernel-side cost that /proc shows: its page tables, and a kernel stack per thread. */
  clientKernel: number;
  slabs: Map<string, number>;
}

/** x86_64's THREAD_SIZE: the kernel stack of every thread (KernelStack in /proc/meminfo). */
const KERNEL_STACK_KB = 16;

function threadsOf(pid: number): number {
  try {
    return Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

function snapshot(gatewayPid: number, clientPid: number): Snapshot {
  const mem = meminfo();
  const clientKernel = statusKb(clientPid, 'VmPTE') + threadsOf(clientPid) * KERNEL_STACK_KB;
  return { mem, used: usedKb(mem), gatewayRss: statusKb(gatewayPid, 'VmRSS'), clientRss: statusKb(clientPid, 'VmRSS'), clientKernel, slabs: slabKb() };
}

/** kB held by each kernel slab cache (slabs x pages per slab; /proc/slabinfo, root only). */
function slabKb(): Map<string, number> {
  const caches = new Map<string, number>();
  for (const line of readFileSync('/proc/slabinfo', 'utf8').split('\n').slice(2)) {
    const f = line.split(/\s+/);
    if (f.length < 16) continue;
    caches.set(f[0], (Number(f[14]) * Number(f[5]) * 4096) / 1024);
  }
  return caches;
}

const mb = (kb: number) => kb / 1024;

async function main(): Promise<void> {
  const sessions = intArg('sessions', 100);
  const probe = process.argv.includes('--probe') ? intArg('probe', 1) : 0;
  // Room for every held session and the probe's logins (1 + N, each closed before the next).
  const maxSandboxes = sessions + probe + 10;
  const clientPoll = process.argv.includes('--client-poll') ? intArg('client-poll', 1) : undefined;
  const gw = await TestGateway.start(maxSandboxes > 1000 ? { config: { admission: { maxSandboxes, maxPerAddress: 20 } } } : {});
  const gatewayPid = gw.proc.pid!;
  let failed = false;
  const client = spawn(PYTHON, [join(REPO, 'bench/paramiko_idle_spread.py')], {
    env: { ...process.env, WG_PORT: String(gw.port), WG_USER: 'level0', WG_PASSWORD: gw.password('level0'), WG_SESSIONS: String(sessions), ...(clientPoll ? { WG_POLL_SECONDS: String(clientPoll) } : {}) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const clientExit = once(client, 'exit');
  const lines = createInterface({ input: client.stdout! })[Symbol.asyncIterator]();
  const next = async (event: string): Promise<Record<string, unknown>> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`client ended while waiting for "${event}"`);
    const msg = JSON.parse(value as string) as Record<string, unknown>;
    if (msg.event !== event) throw new Error(`client said ${value}, expected "${event}"`);
    return msg;
  };

  try {
    console.log(`wargate idle memory — ${sessions} idle interactive sessions${probe ? `, probe of ${probe} logins` : ''}, gateway pid ${gatewayPid}, ${new Date().toISOString()}`);
    if (clientPoll) console.log(`client: paramiko Transports poll every ${clientPoll} s (not 0.1 s)`);
    if (maxSandboxes > 1000) console.log(`gateway config: admission { maxSandboxes: ${maxSandboxes}, maxPerAddress: 20 } (the default maxSandboxes, 1000, leaves no room)`);
    console.log(context(REPO));
    await next('started');
    await sleep(2000);
    const before = snapshot(gatewayPid, client.pid!);

    client.stdin!.write('go\n');
    const ready = await next('ready');
    const opened = ready.opened as number;
    const failures = ready.failed as string[];
    console.log(`opened ${opened} shells in ${f1((ready.ms as number) / 1000)} s (every prompt received), ${failures.length} failed`);
    for (const f of failures.slice(0, 5)) console.log(`  failure ${f}`);
    const cpuBefore = { gw: cpuSeconds(gatewayPid), client: cpuSeconds(client.pid!), at: performance.now() };
    await sleep(5000);
    const after = snapshot(gatewayPid, client.pid!);
    const idleSeconds = (performance.now() - cpuBefore.at) / 1000;
    const cpuShare = (now: number, then: number) => f1(((now - then) / idleSeconds) * 100);

    // The processes of the sandboxes: everything in their pid or mount namespaces, plus the
    // gateway's children on the host side: each sandbox's holder (sandbox-init, host namespaces) and
    // the pty relays (host pid namespace; once inside, also in the sandbox's mount namespace).
    const relays = childrenOf(gw.proc.pid!).filter((pid) => ['wargate-sandbox'].includes(commOf(pid)));
    const pids = [...new Set([...gatewaySandboxProcesses(gw), ...relays])];
    const total = { Rss: 0, Pss: 0, Private: 0, Pss_Anon: 0 };
    const byComm = new Map<string, { n: number; pss: number; priv: number }>();
    for (const pid of pids) {
      const s = smapsRollup(pid);
      if (!s) continue;
      const priv = (s.Private_Clean ?? 0) + (s.Private_Dirty ?? 0);
      total.Rss += s.Rss ?? 0;
      total.Pss += s.Pss ?? 0;
      total.Pss_Anon += s.Pss_Anon ?? 0;
      total.Private += priv;
      const comm = commOf(pid);
      const c = byComm.get(comm) ?? { n: 0, pss: 0, priv: 0 };
      c.n++;
      c.pss += s.Pss ?? 0;
      c.priv += priv;
      byComm.set(comm, c);
    }
    const liveSandboxes = gw.events('sandbox.start').length - gw.events('session.end').length;
    const n = opened || 1;

    const dUsed = after.used - before.used;
    const dGw = after.gatewayRss - before.gatewayRss;
    const dClient = after.clientRss - before.clientRss;
    console.log(`\nhost used memory (MemTotal - MemAvailable): ${f1(mb(before.used))} MB -> ${f1(mb(after.used))} MB`);
    console.log(`  delta used / session, raw                      ${f2(mb(dUsed) / n)} MB   (total ${f1(mb(dUsed))} MB)`);
    console.log(`  delta used / session, minus client RSS growth  ${f2(mb(dUsed - dClient) / n)} MB`);
    // The client runs on this host only for the benchmark; in production it is the player's machine.
    // Its threads (one per paramiko Transport) have kernel stacks and page tables of their own.
    const dClientKernel = after.clientKernel - before.clientKernel;
    console.log(`  delta used / session, minus the client's RSS, page tables and kernel stacks (${f1(dClientKernel / n)} kB / session)  ${f2(mb(dUsed - dClient - dClientKernel) / n)} MB`);
    console.log(`gateway VmRSS: ${f1(mb(before.gatewayRss))} MB -> ${f1(mb(after.gatewayRss))} MB, delta / session ${f2(mb(dGw) / n)} MB`);
    console.log(`client (one python, ${opened} paramiko Transports) VmRSS: ${f1(mb(before.clientRss))} MB -> ${f1(mb(after.clientRss))} MB, delta ${f1(mb(dClient))} MB (${f2(mb(dClient) / n)} MB / session)`);
    console.log(`CPU while idle (the 5 s settle): gateway ${cpuShare(cpuSeconds(gatewayPid), cpuBefore.gw)} % of a core, client ${cpuShare(cpuSeconds(client.pid!), cpuBefore.client)} % of a core`);
    console.log(`kernel counters, delta / session (kB): ` +
      ['AnonPages', 'Slab', 'SUnreclaim', 'KReclaimable', 'PageTables', 'KernelStack', 'Shmem', 'Cached', 'Percpu']
        .map((k) => `${k} ${f1((after.mem[k] - before.mem[k]) / n)}`)
        .join(', '));
    const slabGrowth = [...after.slabs].map(([name, kb]): [string, number] => [name, (kb - (before.slabs.get(name) ?? 0)) / n]).sort((a, b) => b[1] - a[1]);
    console.log(`  slab caches that grew most, kB / session: ${slabGrowth.slice(0, 14).map(([name, kb]) => `${name} ${f1(kb)}`).join(', ')}`);

    console.log(`\nsandbox processes (pid/mnt namespaces of ${liveSandboxes} live sandboxes): ${pids.length}, ${f2(pids.length / n)} per session`);
    console.log(`  Pss / session ${f2(mb(total.Pss) / n)} MB (Pss_Anon ${f2(mb(total.Pss_Anon) / n)} MB), private (Private_Clean + Private_Dirty) / session ${f2(mb(total.Private) / n)} MB, Rss / session ${f2(mb(total.Rss) / n)} MB`);
    for (const [comm, c] of [...byComm.entries()].sort((a, b) => b[1].pss - a[1].pss)) {
      console.log(`  ${comm.padEnd(10)} ${String(c.n).padStart(4)} procs (${f2(c.n / n)}/session)  Pss ${f1(c.pss / n).padStart(6)} kB/session  private ${f1(c.priv / n).padStart(6)} kB/session`);
    }

    if (probe > 0) {
      // New logins while every session is held: how a player logging in then feels it.
      const live = gw.events('session.start').length - gw.events('session.end').length;
      const refusedBefore = gw.events('admission.refused').length;
      await paramikoLogins(gw, 1);
      const probed = await paramikoLogins(gw, probe);
      const ok = probed.filter((r) => !r.error);
      const refused = gw.events('admission.refused').slice(refusedBefore);
      console.log(`\nprobe: ${probe} sequential interactive logins (paramiko, pty + shell) with ${live} sessions held open, ${probed.length - ok.length} failed`);
      console.log(summaryLine('connect -> first byte', ok.map((r) => r.first)));
      console.log(summaryLine('connect -> shell prompt', ok.map((r) => r.prompt)));
      for (const r of probed.filter((r) => r.error).slice(0, 3)) console.log(`  failure #${r.i}: ${r.error}`);
      if (refused.length > 0) console.log(`  admission refused ${refused.length} logins (${countBy(refused, (e) => e.code)}): ${JSON.stringify(refused[0]).slice(0, 300)}`);
    }

    client.stdin!.write('close\n');
    await next('closed');
    await clientExit;
    // The gateway destroys each sandbox when its connection closes; wait for all of them.
    const t0 = performance.now();
    await gw.waitFor(() => gw.events('session.end').length >= gw.events('session.start').length, 60_000).catch(() => undefined);
    const ends = gw.events('session.end');
    const waited = performance.now() - t0;
    await sleep(1000);
    const closed = snapshot(gatewayPid, client.pid!);
    console.log(`\nafter close: ${ends.length}/${gw.events('session.start').length} sessions ended within ${f1(waited / 1000)} s; ` +
      `used memory ${f1(mb(closed.used))} MB (${f1(mb(closed.used - before.used))} MB over the baseline), gateway VmRSS ${f1(mb(closed.gatewayRss))} MB`);
    const refusedAll = gw.events('admission.refused');
    if (refusedAll.length > 0) console.log(`  admission refused ${refusedAll.length} logins in all (${countBy(refusedAll, (e) => e.code)}): ${JSON.stringify(refusedAll[0]).slice(0, 300)}`);
    const cleanup = ends.map((e) => e.cleanupMs as number).sort((a, b) => a - b);
    console.log(`  session.end cleanupMs: min ${cleanup[0]} p50 ${cleanup[Math.floor(cleanup.length / 2)]} max ${cleanup[cleanup.length - 1]}`);
  } catch (err) {
    failed = true;
    console.error('benchmark failed:', err);
  } finally {
    if (client.exitCode === null && client.signalCode === null) client.kill('SIGKILL');
    await finish(gw, failed);
  }
}

await main();
