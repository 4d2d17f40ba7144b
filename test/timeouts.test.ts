// Idle timeout and maximum session length (issue 3, item 5). The logic of src/session/session-timers.ts
// with mock timers; then end to end with a gateway whose limits are a few seconds: OpenSSH and paramiko
// see the warning on their terminal, the session ends with the right reason in the log, input keeps
// an idle session alive, 0 disables, and a session that closed keeps no timer and is garbage.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, describe, test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_LIMITS } from '../src/config/schema.js';
import type { SandboxBackend } from '../src/sandbox/types.js';
import { SessionManager } from '../src/session/session-manager.js';
import { duration, MAX_TIMER_MS, SessionTimers, type TimeoutLimits, type TimeoutReason } from '../src/session/session-timers.js';
import { fakeLevel, fakeSandbox } from './helpers/fakes.js';
import { collect, PY_CLIENTS, PYTHON, spawnSsh, ssh } from './helpers/clients.js';
import { TestGateway, type LogEntry } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';
import { SessionDriver } from './helpers/session-driver.js';

// ---------------------------------------------------------------------------------------------
// The logic, with mock timers (setTimeout and Date; Date.now is the clock the timers are given).

type Event = [at: number, what: 'warn' | 'end', reason: TimeoutReason, secondsLeft?: number];

function timers(t: TestContext, limits: Partial<TimeoutLimits>) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  const events: Event[] = [];
  const timer = new SessionTimers(
    { idleTimeoutSeconds: 0, maxSessionSeconds: 0, warnSeconds: 0, ...limits },
    {
      warn: (reason, secondsLeft) => events.push([Date.now() / 1000, 'warn', reason, secondsLeft]),
      end: (reason) => events.push([Date.now() / 1000, 'end', reason]),
    },
    () => Date.now(),
  );
  /**
   * Advances the mock clock to `seconds` after the start, `step` seconds at a time (a callback sees
   * the end of its tick as the time: events are stamped to within one step).
   */
  const until = (seconds: number, step = 1) => {
    while (Date.now() < seconds * 1000) t.mock.timers.tick(Math.min(step * 1000, seconds * 1000 - Date.now()));
  };
  return { timer, events, until };
}

describe('SessionTimers (mock timers)', () => {
  test('idle: warned warnSeconds before, ended after idleTimeoutSeconds without input', (t) => {
    const { timer, events, until } = timers(t, { idleTimeoutSeconds: 30, warnSeconds: 10 });
    until(19);
    assert.deepEqual(events, []);
    until(20);
    assert.deepEqual(events, [[20, 'warn', 'idle-timeout', 10]]);
    until(30);
    assert.deepEqual(events.at(-1), [30, 'end', 'idle-timeout']);
    assert.equal(timer.pending, false);
  });

  test('input postpones the idle end; input after the warning cancels it, and a new silence is warned again', (t) => {
    const { timer, events, until } = timers(t, { idleTimeoutSeconds: 30, warnSeconds: 10 });
    until(15);
    timer.touch();
    until(34);
    assert.deepEqual(events, [], 'nothing before 15 + 30 - 10');
    until(35);
    assert.deepEqual(events, [[35, 'warn', 'idle-timeout', 10]]);
    until(40);
    timer.touch();
    until(59);
    assert.deepEqual(events, [[35, 'warn', 'idle-timeout', 10]], 'the warned end (45) did not happen');
    until(70);
    assert.deepEqual(events, [
      [35, 'warn', 'idle-timeout', 10],
      [60, 'warn', 'idle-timeout', 10],
      [70, 'end', 'idle-timeout'],
    ]);
  });

  test('maximum length: a busy session is warned once and ended on time', (t) => {
    const { timer, events, until } = timers(t, { idleTimeoutSeconds: 30, maxSessionSeconds: 100, warnSeconds: 10 });
    for (let s = 5; s <= 100; s += 5) {
      until(s);
      timer.touch();
    }
    assert.deepEqual(events, [
      [90, 'warn', 'max-session-length', 10],
      [100, 'end', 'max-session-length'],
    ]);
  });

  test('only the first end is announced: no idle warning when the maximum length comes first', (t) => {
    const { events, until } = timers(t, { idleTimeoutSeconds: 30, maxSessionSeconds: 25, warnSeconds: 10 });
    until(40);
    assert.deepEqual(events, [
      [15, 'warn', 'max-session-length', 10],
      [25, 'end', 'max-session-length'],
    ]);
  });

  test('0 disables either limit; both 0 leaves no timer at all', (t) => {
    const idleOnly = timers(t, { idleTimeoutSeconds: 10, maxSessionSeconds: 0, warnSeconds: 0 });
    for (let s = 5; s <= 100; s += 5) {
      idleOnly.until(s);
      idleOnly.timer.touch();
    }
    assert.deepEqual(idleOnly.events, [], 'no maximum length');
    idleOnly.timer.stop();
    t.mock.timers.reset();

    const none = timers(t, {});
    assert.equal(none.timer.pending, false);
    none.until(86_400, 3600);
    assert.deepEqual(none.events, []);
  });

  test('warnSeconds of 0, or not below the timeout, gives no warning, only the end', (t) => {
    const { events, until } = timers(t, { idleTimeoutSeconds: 10, maxSessionSeconds: 0, warnSeconds: 10 });
    until(10);
    assert.deepEqual(events, [[10, 'end', 'idle-timeout']]);
  });

  test('after stop() nothing fires and no timer is pending', (t) => {
    const { timer, events, until } = timers(t, { idleTimeoutSeconds: 10, maxSessionSeconds: 20, warnSeconds: 5 });
    until(6);
    assert.equal(events.length, 1);
    timer.stop();
    assert.equal(timer.pending, false);
    until(100);
    assert.equal(events.length, 1);
  });

  test('a 30-day maximum is waited out in steps below the 2^31 ms setTimeout limit', (t) => {
    const days = 30 * 86_400;
    const { events, until } = timers(t, { maxSessionSeconds: days, warnSeconds: 60 });
    until(days - 61, 3600);
    assert.deepEqual(events, []);
    until(days);
    assert.deepEqual(events, [
      [days - 60, 'warn', 'max-session-length', 60],
      [days, 'end', 'max-session-length'],
    ]);
  });

  test('durations read as players say them', () => {
    assert.deepEqual([1, 45, 60, 90, 1800, 3600, 14_400].map(duration), ['1 second', '45 seconds', '1 minute', '90 seconds', '30 minutes', '1 hour', '4 hours']);
  });
});

test('real timers: a 30-day maximum does not fire at once (setTimeout would overflow to 1 ms)', async () => {
  assert.ok(30 * 86_400_000 > MAX_TIMER_MS);
  let ended = false;
  const timer = new SessionTimers({ idleTimeoutSeconds: 0, maxSessionSeconds: 30 * 86_400, warnSeconds: 60 }, { warn: () => {}, end: () => (ended = true) });
  await new Promise((r) => setTimeout(r, 50));
  timer.stop();
  assert.equal(ended, false);
});

// ---------------------------------------------------------------------------------------------
// Sessions keep no timer and no closure once closed (real SessionManager, a fake backend).

const silent = pino({ level: 'silent' });

const fakeBackend: SandboxBackend = {
  create: async (spec) => fakeSandbox(spec.id),
  reap: async () => 0,
  close: async () => {},
};

const activeTimeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('500 sessions opened and closed leave no timer behind and are garbage-collected', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // Limits long enough not to fire during the test, short enough that a leaked timer (a failure)
  // does not hold the test process for long.
  const manager = new SessionManager(fakeBackend, { ...DEFAULT_LIMITS, idleTimeoutSeconds: 5, maxSessionSeconds: 10 }, silent, {
    maxSandboxes: 1000,
    maxPerAddress: 1000,
  });
  const baseline = activeTimeouts();
  let collected = 0;
  const registry = new FinalizationRegistry(() => collected++);
  const sessions = Array.from({ length: 500 }, (_, i) => manager.open(fakeLevel, { address: '192.0.2.1', port: 1000 + i }));
  sessions.forEach((s) => registry.register(s, s.id));
  assert.equal(activeTimeouts(), baseline + 500, 'one timer per live session');
  await Promise.all(sessions.map((s, i) => (i % 2 ? manager.close(s, 'disconnect') : s.end('admin-kill').then(() => manager.close(s, 'x')))));
  sessions.length = 0;
  assert.equal(activeTimeouts(), baseline, 'every timer cleared at close');
  assert.equal(manager.size, 0);
  assert.equal(manager.countFrom('192.0.2.1'), 0);
  for (let i = 0; i < 20 && collected < 500; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(collected, 500, 'no timer or closure keeps a closed session alive');
});

// ---------------------------------------------------------------------------------------------
// End to end: idle 3 s, maximum 6 s, warning 1 s before either.

const IDLE = 3;
const MAX = 6;
const WARN = 1;
const gateways: TestGateway[] = [];
let gwPromise: Promise<TestGateway> | undefined;

/** The gateway with short limits, started by the first test that needs it. */
function shortLimits(): Promise<TestGateway> {
  gwPromise ??= TestGateway.start({
    config: { sandbox: { idleTimeoutSeconds: IDLE, maxSessionSeconds: MAX, warnSeconds: WARN } },
  }).then((gw) => (gateways.push(gw), gw));
  return gwPromise;
}

after(async () => {
  try {
    for (const gw of gateways) await gw.stop();
    for (const gw of gateways) await assertNothingLeft(gw);
  } finally {
    for (const gw of gateways) gw.cleanup();
  }
});

interface ShellRun {
  output: string;
  notices: { warning?: number; ended?: number };
  closedAt: number | null;
  disconnected: boolean;
}

async function paramikoShell(gw: TestGateway, args: { typeEvery?: number; limit?: number }): Promise<ShellRun> {
  const child = spawn(PYTHON, [join(PY_CLIENTS, 'timeouts_shell.py')], {
    env: { ...process.env, WG_PORT: String(gw.port), WG_USER: 'level0', WG_PASSWORD: gw.password('level0'), WG_ARGS: JSON.stringify(args) },
  });
  const r = await collect(child);
  if (r.code !== 0) throw new Error(`timeouts_shell.py exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as ShellRun;
}

/** The session.start and session.end lines of the one session started after `known` sessions. */
async function sessionTimes(gw: TestGateway, known: number): Promise<{ start: LogEntry; end: LogEntry; warnings: LogEntry[] }> {
  const start = await gw.waitFor((e) => e.event === 'session.start' && gw.events('session.start').indexOf(e) === known, 5000);
  const end = await gw.waitFor((e) => e.event === 'session.end' && e.session === start.session, 15_000);
  return { start, end, warnings: gw.events('session.warning').filter((e) => e.session === start.session) };
}

const elapsed = (from: LogEntry, to: LogEntry) => ((to.time as number) - (from.time as number)) / 1000;

describe('end to end (idle 3 s, maximum 6 s, warning 1 s before)', () => {
  test('paramiko shell left alone: the warning shows after 2 s, the session ends at 3 s (idle-timeout)', { timeout: 30_000 }, async () => {
    const gw = await shortLimits();
    const known = gw.events('session.start').length;
    const run = await paramikoShell(gw, { limit: 15 });
    const { start, end, warnings } = await sessionTimes(gw, known);

    assert.match(run.output, /\*\*\* No input for a while: this session ends in 1 second unless you type something\. \*\*\*/);
    assert.match(run.output, /\*\*\* Session ended: no input for 3 seconds\. \*\*\*/);
    assert.ok(run.notices.warning! >= IDLE - WARN - 0.5 && run.notices.warning! < IDLE, `warning at ${run.notices.warning} s`);
    assert.ok(run.closedAt !== null && run.closedAt >= IDLE - 0.5 && run.closedAt < IDLE + 1.5, `closed at ${run.closedAt} s`);
    assert.equal(run.disconnected, true, 'the connection, not only the channel, is closed');

    assert.equal(end.reason, 'idle-timeout');
    assert.deepEqual(warnings.map((w) => [w.reason, w.secondsLeft]), [['idle-timeout', WARN]]);
    const lasted = elapsed(start, end);
    assert.ok(lasted >= IDLE && lasted < IDLE + 1.5, `session lasted ${lasted} s`);
  });

  test('paramiko shell typed into every 0.5 s outlives the idle timeout; the maximum length ends it at 6 s', { timeout: 30_000 }, async () => {
    const gw = await shortLimits();
    const known = gw.events('session.start').length;
    const run = await paramikoShell(gw, { typeEvery: 0.5, limit: 20 });
    const { start, end, warnings } = await sessionTimes(gw, known);

    assert.doesNotMatch(run.output, /No input for a while/);
    assert.match(run.output, /\*\*\* This session ends in 1 second: sessions last at most 6 seconds\. \*\*\*/);
    assert.match(run.output, /\*\*\* Session ended: sessions last at most 6 seconds\. \*\*\*/);
    assert.ok(run.notices.warning! >= MAX - WARN - 0.5 && run.notices.warning! < MAX, `warning at ${run.notices.warning} s`);
    assert.ok(run.closedAt !== null && run.closedAt >= MAX - 0.5 && run.closedAt < MAX + 1.5, `closed at ${run.closedAt} s`);
    assert.equal(end.reason, 'max-session-length');
    assert.deepEqual(warnings.map((w) => w.reason), ['max-session-length']);
    const lasted = elapsed(start, end);
    assert.ok(lasted >= MAX && lasted < MAX + 1.5, `session lasted ${lasted} s`);
  });

  test('OpenSSH ssh -tt left alone: the warning and the end notice are on the terminal; ssh exits 255', { timeout: 30_000 }, async () => {
    const gw = await shortLimits();
    const known = gw.events('session.start').length;
    const child = spawnSsh(gw, 'level0', ['-tt']);
    // stdin stays open and silent: no input at all.
    const r = await collect(child);
    const { end } = await sessionTimes(gw, known);
    assert.equal(r.code, 255, r.stderr);
    assert.match(r.stdout, /\*\*\* No input for a while: this session ends in 1 second unless you type something\. \*\*\*/);
    assert.match(r.stdout, /\*\*\* Session ended: no input for 3 seconds\. \*\*\*/);
    assert.equal(end.reason, 'idle-timeout');
  });

  test('OpenSSH exec without a pty and without input ends at the idle timeout (no terminal, no notice)', { timeout: 30_000 }, async () => {
    const gw = await shortLimits();
    const known = gw.events('session.start').length;
    const t0 = Date.now();
    const r = await ssh(gw, 'level0', ['--', 'sleep 100']);
    const seconds = (Date.now() - t0) / 1000;
    const { end, warnings } = await sessionTimes(gw, known);
    assert.equal(r.code, 255);
    assert.equal(r.stdout, '');
    assert.ok(seconds >= IDLE && seconds < IDLE + 3, `ssh returned after ${seconds} s`);
    assert.equal(end.reason, 'idle-timeout');
    assert.equal(warnings.length, 1, 'the warning is logged even when no terminal shows it');
  });

  test('16 sessions closed by their clients at once: none is warned or ended by a timer afterwards', { timeout: 60_000 }, async () => {
    const gw = await shortLimits();
    const known = gw.events('session.start').length;
    const driver = await SessionDriver.start(gw, Array.from({ length: 16 }, () => ({ user: 'level0', password: gw.password('level0') })));
    await driver.quit();
    // Log lines come through a pipe: the last session.start may still be on its way.
    await gw.waitFor(() => gw.events('session.start').length >= known + 16, 5000);
    const ids = gw.events('session.start').slice(known).map((e) => e.session);
    assert.equal(ids.length, 16);
    await Promise.all(ids.map((id) => gw.waitFor((e) => e.event === 'session.end' && e.session === id, 10_000)));
    // Past the warning (2 s) and the idle end (3 s) of every one of them.
    await new Promise((r) => setTimeout(r, (IDLE + 1) * 1000));
    const mine = (e: LogEntry) => ids.includes(e.session);
    assert.deepEqual(gw.events('session.warning').filter(mine), []);
    assert.deepEqual(gw.events('session.end').filter(mine).map((e) => e.reason), ids.map(() => 'disconnect'));
  });
});

test('0 disables both: a silent session lives on past what the short limits allowed', { timeout: 30_000 }, async () => {
  const gw = await TestGateway.start({ config: { sandbox: { idleTimeoutSeconds: 0, maxSessionSeconds: 0, warnSeconds: 1 } } });
  gateways.push(gw);
  const driver = await SessionDriver.start(gw);
  try {
    await new Promise((r) => setTimeout(r, (IDLE + 1) * 1000));
    const r = await driver.exec(0, 'echo alive');
    assert.equal(r.stdout, 'alive\n');
    assert.deepEqual(gw.events('session.warning'), []);
    assert.deepEqual(gw.events('session.end'), []);
  } finally {
    await driver.quit();
  }
});
