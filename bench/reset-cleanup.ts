// Cleanup latency after a TCP reset, with a daemon left behind in the sandbox.
//
//   node dist/bench/reset-cleanup.js [--count 200] [--concurrency 4]
//
// COUNT sessions, CONCURRENCY at a time (ssh2 clients in this process, each from its own loopback
// source address, so the gateway's events of each login can be found in its log). Each one: an
// interactive shell (pty + shell, up to the prompt); in it `setsid nohup sleep 1000 >/dev/null 2>&1 &`
// (a double-forked daemon, in its own session, no terminal); wait for the prompt and for the sleep to
// show up in the sandbox's pid namespace (the pidns of the gateway's 'sandbox.start', pinned by
// TestGateway). Then, at T0, the TCP connection is reset (SO_LINGER {1, 0} + close: the kernel sends
// RST). Measured from T0:
//   - to the gateway's 'session.end' (its `time` field: ms since the epoch);
//   - to every process of the sandbox's pid namespace gone from /proc (the pids found before T0,
//     polled every ~2 ms; a pid whose start time changed counts as gone), and, for information, to
//     the moment all of them had exited (gone or zombie).
// Figures only: no asserts on them (target for the note: p99 <= 1 s). Then no sandbox may be left.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { REPO, TestGateway } from '../test/helpers/gateway.js';
import { context, countBy, f1, finish, intArg, SessionsByAddress, sleep, summaryLine } from './lib.js';
import { loginShell, loopbackAddress, resetConnection, runInShell } from './ssh-client.js';

const DAEMON = 'setsid nohup sleep 1000 >/dev/null 2>&1 &\n';
const POLL_MS = 2;
const WAIT_MS = 30_000;

interface Result {
  i: number;
  error?: string;
  /** Processes in the sandbox's pid namespace at T0. */
  procs?: number;
  endMs?: number;
  goneMs?: number;
  exitedMs?: number;
  reason?: string;
  cleanupMs?: number;
  /** Processes of the namespace found by a full /proc scan after the known ones were gone. */
  stragglers?: number;
}

/** Host pids whose pid namespace is `pidns`, with their start times (field 22 of /proc/PID/stat). */
function pidsIn(pidns: string): Map<number, string> {
  const found = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) !== pidns) continue;
      const st = stat(Number(entry));
      if (st) found.set(Number(entry), st.start);
    } catch {
      // ended while we looked
    }
  }
  return found;
}

function stat(pid: number): { state: string; start: string; comm: string } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = s.lastIndexOf(')');
    const fields = s.slice(close + 2).split(' ');
    return { state: fields[0], start: fields[19], comm: s.slice(s.indexOf('(') + 1, close) };
  } catch {
    return undefined;
  }
}

const epochNow = () => performance.timeOrigin + performance.now();

async function one(gw: TestGateway, tracker: SessionsByAddress, i: number): Promise<Result> {
  const address = loopbackAddress(i, 3);
  const r: Result = { i };
  let login;
  try {
    login = await loginShell({ port: gw.port, user: 'level0', password: 'level0', localAddress: address });
    await runInShell(login, DAEMON);
    tracker.started(address); // drains the log tail
    const id = tracker.starts.get(address)?.session;
    const started = gw.logs.find((e) => e.event === 'sandbox.start' && e.sandbox === id);
    if (!started) throw new Error(`no sandbox.start for session ${id}`);
    const pidns = started.pidns as string;
    // The daemon is in the namespace once setsid has exec'd sleep.
    let pids = pidsIn(pidns);
    for (let t = 0; ![...pids.keys()].some((p) => stat(p)?.comm === 'sleep') && t < 200; t++) {
      await sleep(10);
      pids = pidsIn(pidns);
    }
    if (![...pids.keys()].some((p) => stat(p)?.comm === 'sleep')) throw new Error('the daemon did not appear in the sandbox');
    r.procs = pids.size;

    const t0 = epochNow();
    resetConnection(login);
    login = undefined;
    const end = tracker.waitEnd(address, WAIT_MS).then((e) => {
      if (!e) return;
      r.endMs = (e.time as number) - t0;
      r.reason = e.reason as string;
      r.cleanupMs = e.cleanupMs as number;
    });
    const deadline = t0 + WAIT_MS;
    while (epochNow() < deadline) {
      let alive = 0;
      let running = 0;
      for (const [pid, start] of pids) {
        const s = stat(pid);
        if (!s || s.start !== start) continue;
        alive++;
        if (s.state !== 'Z' && s.state !== 'X') running++;
      }
      const now = epochNow();
      if (running === 0 && r.exitedMs === undefined) r.exitedMs = now - t0;
      if (alive === 0) {
        r.goneMs = now - t0;
        break;
      }
      await sleep(POLL_MS);
    }
    await end;
    r.stragglers = pidsIn(pidns).size;
    if (r.goneMs === undefined) r.error = `processes of the sandbox still there ${WAIT_MS} ms after the reset`;
    else if (r.endMs === undefined) r.error = `no session.end within ${WAIT_MS} ms`;
  } catch (err) {
    r.error = (err as Error).message;
    login?.socket.destroy();
  }
  return r;
}

async function main(): Promise<void> {
  const count = intArg('count', 200);
  const concurrency = intArg('concurrency', 4);
  const gw = await TestGateway.start();
  const tracker = new SessionsByAddress(gw);
  let failed = false;
  try {
    console.log(`wargate reset cleanup — ${count} sessions, ${concurrency} at a time, gateway pid ${gw.proc.pid} on 127.0.0.1:${gw.port}, ${new Date().toISOString()}`);
    console.log(context(REPO));
    console.log(`each: interactive shell, \`${DAEMON.trim()}\`, then TCP RST (SO_LINGER {1,0} + close) at T0`);
    const results: Result[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          const r = await one(gw, tracker, next++);
          results.push(r);
          if (results.length % 50 === 0) console.log(`  ${results.length}/${count} done, ${f1((performance.now() - t0) / 1000)} s`);
        }
      }),
    );
    const ok = results.filter((r) => !r.error);
    const bad = results.filter((r) => r.error);
    console.log(`\n${ok.length} measured, ${bad.length} failed, ${f1((performance.now() - t0) / 1000)} s; sandbox processes at T0: ${countBy(ok, (r) => r.procs)} (processes: count)`);
    for (const r of bad.slice(0, 5)) console.log(`  failure #${r.i}: ${r.error}`);
    console.log(`session.end reasons: ${countBy(results.filter((r) => r.reason), (r) => r.reason)}`);
    console.log(summaryLine('T0 -> gateway session.end', ok.map((r) => r.endMs!)));
    console.log(summaryLine('T0 -> all processes gone', ok.map((r) => r.goneMs!)));
    console.log(summaryLine('T0 -> all exited (gone/Z)', ok.map((r) => r.exitedMs!)));
    console.log(summaryLine('gateway cleanupMs', ok.map((r) => r.cleanupMs!)));
    const stragglers = results.filter((r) => (r.stragglers ?? 0) > 0);
    console.log(`pid namespaces with a process left after the known ones were gone: ${stragglers.length}`);
    const worst = Math.max(...ok.map((r) => Math.max(r.endMs!, r.goneMs!)));
    console.log(`note: target p99 <= 1000 ms for both (not asserted); worst single figure ${f1(worst)} ms`);
    if (bad.length > 0) failed = true;
  } catch (err) {
    failed = true;
    console.error('benchmark failed:', err);
  } finally {
    tracker.stop();
    await finish(gw, failed);
  }
}

await main();
