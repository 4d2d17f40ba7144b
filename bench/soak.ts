// Soak: many logins through one gateway, ended in the three ways players leave, and what the gateway
// holds afterwards.
//
//   node dist/bench/soak.js [--logins 10000] [--concurrency 50] [--silent-batch 10] [--warmup 100]
//
// The gateway runs with a short keepalive (1 s x 2). LOGINS interactive logins (pty + shell, up to
// the first prompt), CONCURRENCY sessions live at a time (a slot is held from the connect until the
// gateway has logged that session's 'session.end'). Login i leaves by i mod 3:
//   clean   `exit` in the shell, the channel closes, the client ends the connection;
//   reset   the client resets the TCP connection (SO_LINGER 0 + close: RST);
//   silent  the client process is SIGSTOPped after login, so it stops answering keepalives; it is
//           SIGKILLed once the gateway logged the session.end of each of its logins.
// Clean and reset logins are ssh2 clients in this process; silent ones are SILENT_BATCH logins per
// child process (bench/soak-silent-client.ts). Every login has its own loopback source address
// (127.1.x.y), to stay clear of admission.maxPerAddress and to find its events in the gateway's log.
// The gateway's open fds and VmRSS are sampled after a warm-up of WARMUP logins (same mix, all ended,
// 2 s settle) and at the end (all ended, 5 s settle); nothing is triggered inside the gateway.
// Figures only: no asserts on them. Then no sandbox may be left, first with the gateway still
// running (it holds no session), then after it stopped.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO, TestGateway, type LogEntry } from '../test/helpers/gateway.js';
import { assertNothingLeft } from '../test/helpers/leftovers.js';
import { context, countBy, f1, fdCount, finish, intArg, SessionsByAddress, sleep, statusKb, summaryLine } from './lib.js';
import { exitCleanly, loginShell, loopbackAddress, resetConnection } from './ssh-client.js';

type Kind = 'clean' | 'reset' | 'silent';
const KINDS: Kind[] = ['clean', 'reset', 'silent'];

interface Login {
  i: number;
  kind: Kind;
  address: string;
  ok: boolean;
  error?: string;
  promptMs?: number;
  end?: LogEntry;
  /** silent: SIGSTOP of the client to the gateway's session.end. */
  detectMs?: number;
}

/** Slots for live sessions: `acquire(n)` waits until n are free (first come, first served). */
class Slots {
  private free: number;
  private readonly queue: { n: number; go: () => void }[] = [];
  constructor(readonly size: number) {
    this.free = size;
  }
  acquire(n: number): Promise<void> {
    return new Promise((go) => {
      this.queue.push({ n, go });
      this.pump();
    });
  }
  release(n: number): void {
    this.free += n;
    this.pump();
  }
  private pump(): void {
    while (this.queue.length > 0 && this.queue[0].n <= this.free) {
      const { n, go } = this.queue.shift()!;
      this.free -= n;
      go();
    }
  }
  get idle(): boolean {
    return this.free === this.size && this.queue.length === 0;
  }
}

const END_TIMEOUT_MS = 60_000;

class Soak {
  readonly done: Login[] = [];
  private nextAddress = 0;
  private readonly slots: Slots;
  private readonly tracker: SessionsByAddress;
  private readonly children = new Set<number>();
  onDone: (l: Login) => void = () => {};

  constructor(
    private readonly gw: TestGateway,
    concurrency: number,
    private readonly silentBatch: number,
    /** Which 127.<block>.0.0/16 the source addresses come from (the warm-up uses another one). */
    private readonly block: number,
  ) {
    this.slots = new Slots(concurrency);
    this.tracker = new SessionsByAddress(gw);
  }

  private finishLogin(l: Login): void {
    this.done.push(l);
    this.onDone(l);
  }

  /** Waits for the gateway's end of a login's session (if it was admitted at all). */
  private async awaitEnd(l: Login): Promise<void> {
    if (!l.ok) {
      // A login that failed after authentication still had a session; give its log line a moment.
      await sleep(200);
      if (!this.tracker.started(l.address)) return;
    }
    l.end = await this.tracker.waitEnd(l.address, END_TIMEOUT_MS);
    if (!l.end) {
      l.ok = false;
      l.error = (l.error ? l.error + '; ' : '') + `no session.end within ${END_TIMEOUT_MS} ms`;
    }
  }

  private async direct(l: Login): Promise<void> {
    try {
      const login = await loginShell({ port: this.gw.port, user: 'level0', password: 'level0', localAddress: l.address });
      l.promptMs = login.promptMs;
      if (l.kind === 'clean') await exitCleanly(login);
      else resetConnection(login);
      l.ok = true;
    } catch (err) {
      l.error = (err as Error).message;
    }
    await this.awaitEnd(l);
    this.slots.release(1);
    this.finishLogin(l);
  }

  private async silent(batch: Login[]): Promise<void> {
    const child = spawn(process.execPath, [join(REPO, 'dist/bench/soak-silent-client.js')], {
      env: { ...process.env, WG_PORT: String(this.gw.port), WG_USER: 'level0', WG_PASSWORD: 'level0', WG_ADDRESSES: batch.map((l) => l.address).join(',') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.add(child.pid!);
    const exited = once(child, 'exit');
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    let ready: { ok: string[]; failed: { address: string; error: string }[] } | undefined;
    try {
      const { value, done } = await lines.next();
      if (!done) ready = JSON.parse(value as string);
    } catch {
      // reported below
    }
    const stoppedAt = performance.now();
    if (ready) child.kill('SIGSTOP');
    const ok = new Set(ready?.ok ?? []);
    const failed = new Map((ready?.failed ?? []).map((f) => [f.address, f.error]));
    await Promise.all(
      batch.map(async (l) => {
        l.ok = ok.has(l.address);
        if (!l.ok) l.error = failed.get(l.address) ?? `silent client gave no result (stderr: ${stderr.trim().slice(0, 200)})`;
        await this.awaitEnd(l);
        if (l.ok && l.end) l.detectMs = (l.end.time as number) - (performance.timeOrigin + stoppedAt);
      }),
    );
    child.kill('SIGKILL');
    await exited;
    this.children.delete(child.pid!);
    this.slots.release(batch.length);
    for (const l of batch) this.finishLogin(l);
  }

  /** Runs `count` logins, mixed by i mod 3, and resolves when every session has ended. */
  async run(count: number): Promise<void> {
    const tasks: Promise<void>[] = [];
    let batch: Login[] = [];
    const flushSilent = async () => {
      if (batch.length === 0) return;
      const b = batch;
      batch = [];
      await this.slots.acquire(b.length);
      tasks.push(this.silent(b));
    };
    for (let i = 0; i < count; i++) {
      const l: Login = { i, kind: KINDS[i % 3], address: loopbackAddress(this.nextAddress++, this.block), ok: false };
      if (l.kind === 'silent') {
        batch.push(l);
        if (batch.length >= this.silentBatch) await flushSilent();
        continue;
      }
      await this.slots.acquire(1);
      tasks.push(this.direct(l));
    }
    await flushSilent();
    await Promise.all(tasks);
  }

  /** SIGKILL for any silent client still alive (after a failure). */
  killChildren(): void {
    for (const pid of this.children) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  stop(): void {
    this.tracker.stop();
  }
}

interface Sample {
  fds: number;
  rssKb: number;
}

const sample = (pid: number): Sample => ({ fds: fdCount(pid), rssKb: statusKb(pid, 'VmRSS') });
const mb = (kb: number) => f1(kb / 1024);

async function main(): Promise<void> {
  const logins = intArg('logins', 10_000);
  const concurrency = intArg('concurrency', 50);
  const silentBatch = Math.min(intArg('silent-batch', 10), concurrency);
  const warmup = intArg('warmup', 100);
  // Up to `concurrency` logins are between accept and authentication at once: above OpenSSH's
  // MaxStartups default (10:30:100), which would drop some at random (src/ssh/preauth-gate.ts).
  const preauth = { maxStartups: { start: 2 * concurrency, rate: 30, full: 4 * concurrency } };
  const gw = await TestGateway.start({ keepalive: { intervalSeconds: 1, countMax: 2 }, config: { preauth } });
  const pid = gw.proc.pid!;
  let failed = false;
  let soak: Soak | undefined;
  try {
    console.log(`wargate soak — ${logins} logins, ${concurrency} at a time (clean / reset / silent by thirds, silent in batches of ${silentBatch}), keepalive 1 s x 2, gateway pid ${pid}, ${new Date().toISOString()}`);
    console.log(context(REPO));

    const warm = new Soak(gw, concurrency, silentBatch, 2);
    const warmStart = performance.now();
    await warm.run(warmup);
    warm.stop();
    const warmFailed = warm.done.filter((l) => !l.ok);
    console.log(`warm-up: ${warmup} logins in ${f1((performance.now() - warmStart) / 1000)} s, ${warmFailed.length} failed${warmFailed.length ? `, first: ${warmFailed[0].error}` : ''}`);
    await sleep(2000);
    const start = sample(pid);
    console.log(`start (after warm-up, 2 s settle): gateway fds ${start.fds}, VmRSS ${mb(start.rssKb)} MB`);
    const firstLog = gw.logs.length;

    soak = new Soak(gw, concurrency, silentBatch, 1);
    const t0 = performance.now();
    let lastMark = t0;
    soak.onDone = () => {
      const n = soak!.done.length;
      if (n % 1000 !== 0) return;
      const now = performance.now();
      const s = sample(pid);
      const bad = soak!.done.filter((l) => !l.ok).length;
      console.log(
        `  ${String(n).padStart(6)}/${logins} done, ${bad} failed, ${f1((now - t0) / 1000)} s, ${f1(1000 / ((now - lastMark) / 1000))} logins/s over the last 1000; ` +
          `gateway fds ${s.fds}, VmRSS ${mb(s.rssKb)} MB`,
      );
      lastMark = now;
    };
    await soak.run(logins);
    const elapsed = (performance.now() - t0) / 1000;
    soak.stop();

    const live = () => gw.events('session.start').length - gw.events('session.end').length;
    await gw.waitFor(() => live() === 0, 30_000).catch(() => undefined);
    await sleep(5000);
    const end = sample(pid);

    const done = soak.done;
    const bad = done.filter((l) => !l.ok);
    const ends = done.filter((l) => l.end).map((l) => l.end!);
    console.log(`\nlogins: ${done.length - bad.length} done, ${bad.length} failed, in ${f1(elapsed)} s: ${f1(done.length / elapsed)} logins/s (each to the gateway's session.end)`);
    for (const [kind, reasons] of KINDS.map((k) => [k, done.filter((l) => l.kind === k)] as const)) {
      console.log(`  ${kind.padEnd(6)} ${reasons.length} logins, ${reasons.filter((l) => !l.ok).length} failed, session.end reasons ${countBy(reasons.filter((l) => l.end), (l) => l.end!.reason)}`);
    }
    const failures = new Map<string, number>();
    for (const l of bad) failures.set(`${l.kind}: ${l.error}`, (failures.get(`${l.kind}: ${l.error}`) ?? 0) + 1);
    for (const [why, n] of [...failures.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  failure x${n}: ${why.slice(0, 300)}`);
    // What the gateway logged of the first few failed logins (its lines name the client address).
    for (const l of bad.slice(0, 3)) {
      const id = gw.logs.find((e) => e.event === 'session.start' && e.client === l.address)?.session;
      const lines = gw.logs.filter((e) => e.client === l.address || (id !== undefined && (e.session === id || e.sandbox === id)));
      console.log(`  gateway log of failed login #${l.i} (${l.kind}, ${l.address}):`);
      for (const e of lines) console.log(`    ${JSON.stringify(e).slice(0, 400)}`);
    }

    const mainLogs = gw.logs.slice(firstLog);
    const allEnds = mainLogs.filter((e) => e.event === 'session.end');
    console.log(`session.end reasons (all ${allEnds.length} in the gateway's log since the warm-up): ${countBy(allEnds, (e) => e.reason)}`);
    console.log(summaryLine('cleanupMs (all)', ends.map((e) => e.cleanupMs as number)));
    for (const kind of KINDS) console.log(summaryLine(`cleanupMs (${kind})`, done.filter((l) => l.kind === kind && l.end).map((l) => l.end!.cleanupMs as number)));
    console.log(summaryLine('login: connect -> prompt', done.filter((l) => l.promptMs !== undefined).map((l) => l.promptMs!)));
    console.log(summaryLine('silent: SIGSTOP -> end', done.filter((l) => l.detectMs !== undefined).map((l) => l.detectMs!)));
    const errors = mainLogs.filter((e) => typeof e.level === 'number' && (e.level as number) >= 50);
    const warnings = mainLogs.filter((e) => e.level === 40);
    console.log(`gateway log lines since the warm-up: ${mainLogs.length}; events ${countBy(mainLogs.filter((e) => e.event && !['session.start', 'session.end', 'sandbox.start'].includes(e.event)), (e) => e.event)}`);
    console.log(`  errors (level >= 50): ${errors.length}${errors.length ? `, first: ${JSON.stringify(errors[0]).slice(0, 400)}` : ''}; warnings: ${warnings.length}${warnings.length ? `, first: ${JSON.stringify(warnings[0]).slice(0, 400)}` : ''}`);

    console.log(`\ngateway open fds: ${start.fds} -> ${end.fds} (${end.fds - start.fds >= 0 ? '+' : ''}${end.fds - start.fds})`);
    console.log(`gateway VmRSS:    ${mb(start.rssKb)} MB -> ${mb(end.rssKb)} MB (${end.rssKb >= start.rssKb ? '+' : ''}${f1(((end.rssKb - start.rssKb) / start.rssKb) * 100)} %), VmHWM ${mb(statusKb(pid, 'VmHWM'))} MB`);
    console.log(`live sessions at the end: ${live()}`);

    try {
      await assertNothingLeft(gw, 5000);
      console.log('\nleftovers with the gateway still running: none');
    } catch (err) {
      failed = true;
      console.log(`\nleftovers with the gateway still running: ${(err as Error).message}`);
    }
    if (bad.length > 0) failed = true;
  } catch (err) {
    failed = true;
    console.error('benchmark failed:', err);
  } finally {
    soak?.killChildren();
    soak?.stop();
    await finish(gw, failed);
  }
}

await main();
