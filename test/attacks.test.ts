// Contained attacks (issue 3, item 3): a fork bomb meets EAGAIN, a memory bomb is OOM-killed, and
// filling the disk or the inode table meets ENOSPC — each inside the attacker's sandbox only. While
// each attack runs, another player still logs in and gets a shell within 2 s, and the attacker's
// sandbox is gone without a trace once the attacker leaves.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { instanceName } from '../src/cgroup/detect.js';
import { collect, spawnSsh, ssh } from './helpers/clients.js';
import type { LogEntry, TestGateway } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';
import { sharedGateway } from './helpers/shared-gateway.js';

let gw: TestGateway;
sharedGateway((g) => (gw = g));

/** The demo's defaults (src/config/schema.ts DEFAULT_LIMITS). */
const PIDS_MAX = 256;
const WRITABLE_MB = 64;
const WRITABLE_INODES = 16384;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A file of a sandbox's cgroup, in whichever hierarchy holds it (v1 or v2 layout). */
function cgroupFile(sandbox: string, file: string): string {
  const instance = instanceName(gw.stateDir);
  const controller = file.split('.')[0];
  const candidates = [join('/sys/fs/cgroup', controller, 'wargate', instance, sandbox, file), join('/sys/fs/cgroup/wargate', instance, sandbox, file)];
  const found = candidates.find((p) => existsSync(p));
  assert.ok(found, `no ${file} for sandbox ${sandbox}`);
  return found;
}

const readNumber = (path: string) => Number(readFileSync(path, 'utf8').trim());

/** Memory charged to a sandbox's cgroup (v2 memory.current, v1 memory.usage_in_bytes). */
function memoryUsage(sandbox: string): number {
  for (const file of ['memory.current', 'memory.usage_in_bytes']) {
    try {
      return readNumber(cgroupFile(sandbox, file));
    } catch {
      // the other cgroup version
    }
  }
  return 0;
}

/** Waits for the next sandbox the gateway starts and returns its id. */
async function nextSandbox(): Promise<string> {
  const known = new Set(gw.events('sandbox.start').map((e) => e.sandbox));
  const entry: LogEntry = await gw.waitFor((e) => e.event === 'sandbox.start' && !known.has(e.sandbox), 20_000);
  return entry.sandbox as string;
}

/** Another player (level1) logs in and runs a command; returns how long until its output arrived. */
async function bystanderLogin(): Promise<number> {
  const started = performance.now();
  const r = await ssh(gw, 'level1', ['--', 'echo bystander-ok']);
  const ms = performance.now() - started;
  assert.equal(r.stdout, 'bystander-ok\n', r.stderr);
  return ms;
}

/** Runs `attack` as level0 until `inEffect()` holds, checks a bystander login, then leaves. */
async function duringAttack(
  attack: string,
  inEffect: (sandbox: string, output: string) => boolean,
): Promise<{ sandbox: string; output: string; bystanderMs: number }> {
  const sandboxId = nextSandbox();
  const attacker = spawnSsh(gw, 'level0', ['-tt', '--', attack]);
  let output = '';
  attacker.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  const result = collect(attacker);
  const sandbox = await sandboxId;
  const deadline = Date.now() + 20_000;
  while (!inEffect(sandbox, output)) {
    assert.ok(Date.now() < deadline, 'the attack never took effect');
    await sleep(20);
  }
  const bystanderMs = await bystanderLogin();
  assert.ok(bystanderMs < 2000, `a bystander's login took ${Math.round(bystanderMs)} ms during the attack`);
  attacker.kill('SIGKILL');
  const { stdout } = await result;
  await gw.waitFor((e) => e.event === 'session.end' && e.session === sandbox, 10_000);
  return { sandbox, output: stdout, bystanderMs };
}

test('a fork bomb meets EAGAIN at the pids limit, inside its own sandbox only', { timeout: 90_000 }, async (t) => {
  // First, measured: forks beyond the limit fail with EAGAIN.
  const forker = [
    'import errno, os, signal',
    'kids = []',
    'try:',
    '    while len(kids) < 2000:',
    '        pid = os.fork()',
    '        if pid == 0:',
    '            signal.pause()',
    '            os._exit(0)',
    '        kids.append(pid)',
    '    print("no limit")',
    'except OSError as e:',
    '    print("forked", len(kids), errno.errorcode[e.errno])',
    'for pid in kids:',
    '    os.kill(pid, signal.SIGKILL)',
  ].join('\n');
  const r = await ssh(gw, 'level0', ['--', 'python3 -'], forker);
  const m = /^forked (\d+) EAGAIN$/.exec(r.stdout.trim());
  assert.ok(m, `${r.stdout} ${r.stderr}`);
  assert.ok(Number(m[1]) < PIDS_MAX && Number(m[1]) > PIDS_MAX - 20, `forked ${m[1]} children`);
  await assertNothingLeft(gw);

  // Then the real thing, while someone else logs in.
  // The bomb backgrounds itself; `read -t` (a builtin: no fork needed) keeps the session open.
  const bomb = ':(){ :|:& };:; read -t 60';
  const { sandbox, bystanderMs } = await duringAttack(bomb, (id) => readNumber(cgroupFile(id, 'pids.current')) >= PIDS_MAX - 5);
  t.diagnostic(`fork bomb in ${sandbox}: bystander login ${Math.round(bystanderMs)} ms`);
  await assertNothingLeft(gw);
});

test('a memory bomb is OOM-killed inside its sandbox; the rest of that sandbox and others live on', { timeout: 90_000 }, async (t) => {
  const r = await ssh(gw, 'level0', [
    '--',
    `python3 -c 'a = []\nwhile True: a.append(bytearray(8 << 20))'; echo "bomb exit=$?"; echo shell-alive`,
  ]);
  // 137: killed by SIGKILL, the OOM killer's signal; the shell that ran it goes on.
  assert.match(r.stdout, /bomb exit=137\nshell-alive\n/, r.stderr);

  // Held at the limit (allocate, then sleep) while another player logs in.
  const hog = `python3 -c 'import time\na = []\ntry:\n  while True: a.append(bytearray(4 << 20))\nexcept MemoryError: pass\ntime.sleep(60)'; sleep 60`;
  const { sandbox, bystanderMs } = await duringAttack(hog, (id) => memoryUsage(id) > 200 << 20);
  t.diagnostic(`memory bomb in ${sandbox}: bystander login ${Math.round(bystanderMs)} ms`);
  await assertNothingLeft(gw);
});

test('filling ~ and /tmp meets ENOSPC at the writable size; another sandbox still writes', { timeout: 90_000 }, async (t) => {
  const fill = `dd if=/dev/zero of=$HOME/big bs=1M count=${WRITABLE_MB * 2} 2>&1 | tail -1; dd if=/dev/zero of=/tmp/more bs=1M count=8 2>&1 | head -1; du -sm $HOME/big | cut -f1`;
  const r = await ssh(gw, 'level0', ['--', fill]);
  const lines = r.stdout.trim().split('\n');
  assert.match(r.stdout, /No space left on device/);
  assert.ok(Number(lines.at(-1)) <= WRITABLE_MB, `wrote ${lines.at(-1)} MB`);

  const { sandbox, bystanderMs } = await duringAttack(
    `dd if=/dev/zero of=/tmp/fill bs=1M count=${WRITABLE_MB * 2} 2>/dev/null; echo FULL; read -t 60`,
    (_id, output) => output.includes('FULL'),
  );
  const other = await ssh(gw, 'level1', ['--', 'dd if=/dev/zero of=/tmp/x bs=1M count=8 2>&1 | tail -1']);
  assert.match(other.stdout, /8388608 bytes/);
  t.diagnostic(`disk fill in ${sandbox}: bystander login ${Math.round(bystanderMs)} ms`);
  await assertNothingLeft(gw);
});

test('creating files until inodes run out is bounded by the inode cap', { timeout: 90_000 }, async (t) => {
  const r = await ssh(gw, 'level0', ['--', 'mkdir /tmp/i && cd /tmp/i && n=0; while : 2>/dev/null >f$n; do n=$((n+1)); done; echo created=$n; : > one-more']);
  const created = Number(/created=(\d+)/.exec(r.stdout)?.[1]);
  assert.ok(created > 1000 && created < WRITABLE_INODES, `created ${created} files`);
  assert.match(r.stderr, /No space left on device/);

  const { sandbox, bystanderMs } = await duringAttack(
    'cd /tmp && n=0; while : 2>/dev/null >f$n; do n=$((n+1)); done; echo FULL; read -t 60',
    (_id, output) => output.includes('FULL'),
  );
  t.diagnostic(`inode fill in ${sandbox}: bystander login ${Math.round(bystanderMs)} ms`);
  await assertNothingLeft(gw);
});
