// Host memory per idle interactive session.
//
//   node dist/bench/idle-memory.js [--sessions 100]
//
// A gateway is started; ONE /usr/bin/python3 process (bench/paramiko_idle.py) imports paramiko and
// waits. After 2 s: baseline (MemTotal - MemAvailable, gateway VmRSS, client VmRSS, a few kernel
// counters). The client then opens SESSIONS interactive shells (pty + shell) one after the other and
// keeps them idle once every prompt has arrived; 5 s to settle (no cache dropping); measured again.
// Printed: used-memory delta per session (raw, and minus the client's own RSS growth), gateway RSS
// delta per session, client RSS delta, and the processes found in the sandboxes' pid/mount
// namespaces (from the 'sandbox.start' log events): count per session and Pss / private memory per
// session from /proc/PID/smaps_rollup. Then everything is closed, the gateway stopped, and nothing
// may be left. Figures only: no asserts on them. The host is shared: used memory is noisy.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PYTHON } from '../test/helpers/clients.js';
import { REPO, TestGateway } from '../test/helpers/gateway.js';
import { childrenOf } from '../src/sandbox/procfs.js';
import { gatewaySandboxProcesses } from '../test/helpers/leftovers.js';
import { commOf, context, f1, f2, finish, intArg, meminfo, sleep, smapsRollup, statusKb, usedKb } from './lib.js';

interface Snapshot {
  mem: Record<string, number>;
  used: number;
  gatewayRss: number;
  clientRss: number;
}

function snapshot(gatewayPid: number, clientPid: number): Snapshot {
  const mem = meminfo();
  return { mem, used: usedKb(mem), gatewayRss: statusKb(gatewayPid, 'VmRSS'), clientRss: statusKb(clientPid, 'VmRSS') };
}

const mb = (kb: number) => kb / 1024;

async function main(): Promise<void> {
  const sessions = intArg('sessions', 100);
  const gw = await TestGateway.start();
  const gatewayPid = gw.proc.pid!;
  let failed = false;
  const client = spawn(PYTHON, [join(REPO, 'bench/paramiko_idle.py')], {
    env: { ...process.env, WG_PORT: String(gw.port), WG_USER: 'level0', WG_PASSWORD: gw.password('level0'), WG_SESSIONS: String(sessions) },
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
    console.log(`wargate idle memory — ${sessions} idle interactive sessions, gateway pid ${gatewayPid}, ${new Date().toISOString()}`);
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
    await sleep(5000);
    const after = snapshot(gatewayPid, client.pid!);

    // The processes of the sandboxes: everything in their pid or mount namespaces, host-side
    // helpers included (unshare and nsenter live in the sandbox's mount namespace), plus the
    // gateway's pty relays (on the host side, in no sandbox namespace).
    const relays = childrenOf(gw.proc.pid!).filter((pid) => commOf(pid) === 'pty-relay');
    const pids = [...gatewaySandboxProcesses(gw), ...relays];
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
    console.log(`gateway VmRSS: ${f1(mb(before.gatewayRss))} MB -> ${f1(mb(after.gatewayRss))} MB, delta / session ${f2(mb(dGw) / n)} MB`);
    console.log(`client (one python, ${opened} paramiko Transports) VmRSS: ${f1(mb(before.clientRss))} MB -> ${f1(mb(after.clientRss))} MB, delta ${f1(mb(dClient))} MB (${f2(mb(dClient) / n)} MB / session)`);
    console.log(`kernel counters, delta / session (kB): ` +
      ['AnonPages', 'Slab', 'SUnreclaim', 'KReclaimable', 'PageTables', 'KernelStack', 'Shmem', 'Cached', 'Percpu']
        .map((k) => `${k} ${f1((after.mem[k] - before.mem[k]) / n)}`)
        .join(', '));

    console.log(`\nsandbox processes (pid/mnt namespaces of ${liveSandboxes} live sandboxes): ${pids.length}, ${f2(pids.length / n)} per session`);
    console.log(`  Pss / session ${f2(mb(total.Pss) / n)} MB (Pss_Anon ${f2(mb(total.Pss_Anon) / n)} MB), private (Private_Clean + Private_Dirty) / session ${f2(mb(total.Private) / n)} MB, Rss / session ${f2(mb(total.Rss) / n)} MB`);
    for (const [comm, c] of [...byComm.entries()].sort((a, b) => b[1].pss - a[1].pss)) {
      console.log(`  ${comm.padEnd(10)} ${String(c.n).padStart(4)} procs (${f2(c.n / n)}/session)  Pss ${f1(c.pss / n).padStart(6)} kB/session  private ${f1(c.priv / n).padStart(6)} kB/session`);
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
