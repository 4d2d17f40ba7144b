// The promises of the SandboxBackend contract (src/sandbox/types.ts), checked directly against the
// backend without SSH: exec, exit codes and signals, env, a pty with resize, one sandbox shared by
// several processes, destroy that leaves nothing, and the reaper for records of a dead gateway.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { detectCgroupDriver } from '../src/cgroup/detect.js';
import { GameCatalog, type Level } from '../src/games/catalog.js';
import { NamespaceBackend } from '../src/sandbox/namespace-backend.js';
import { childrenOf, processStartTime } from '../src/sandbox/procfs.js';
import type { ProcessSpec, Sandbox, SandboxBackend, SandboxProcess } from '../src/sandbox/types.js';
import { REPO } from './helpers/gateway.js';
import { cgroupsOf, descendsFrom, processesIn } from './helpers/leftovers.js';

let stateDir: string;
let backend: SandboxBackend;
let level: Level;
let counter = 0;
const namespaces = new Set<string>();
/** Open pid namespaces of the sandboxes: pinned, their numbers cannot be reused by other sandboxes. */
const pins: number[] = [];
/** Sandbox processes: all in their pid namespaces, and this test's host-side helpers in their mount namespaces. */
const leftovers = () => processesIn(namespaces, (pid, ns) => ns.startsWith('pid:') || descendsFrom(pid, process.pid));

before(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'wargate-conformance-'));
  const catalog = await GameCatalog.open([join(REPO, 'games/demo')], stateDir);
  level = catalog.level('level0')!;
  backend = new NamespaceBackend({ stateDir, logger: pino({ level: 'silent' }), cgroups: detectCgroupDriver(stateDir) });
});

after(async () => {
  assert.deepEqual(leftovers(), [], 'processes left in sandbox namespaces');
  await backend.close();
  assert.deepEqual(cgroupsOf(stateDir), [], 'cgroups left');
  for (const fd of pins) closeSync(fd);
  assert.deepEqual(readdirSync(join(stateDir, 'sandboxes')), [], 'records left');
  rmSync(stateDir, { recursive: true, force: true });
});

async function withSandbox(fn: (sb: Sandbox) => Promise<void>): Promise<void> {
  const sb = await backend.create({
    id: `conf${++counter}`,
    hostname: 'conformance',
    layers: level.game.layers,
    hostUsr: level.game.hostUsr,
    purpose: 'session',
    limits: { memoryBytes: 128 * 1024 ** 2, pids: 64, cpuWeight: 100, writableSize: '16m', writableInodes: 1024 },
  });
  const nsPid = nsPidOf(sb);
  for (const ns of ['pid', 'mnt']) namespaces.add(readlinkSync(`/proc/${nsPid}/ns/${ns}`));
  pins.push(openSync(`/proc/${nsPid}/ns/pid`, 'r'));
  try {
    await fn(sb);
  } finally {
    await sb.destroy();
  }
  assert.deepEqual(leftovers(), [], 'destroy() resolved while processes remain');
}

/** The sandbox's PID 1 on the host: the only child of its holder (sandbox-init). */
function nsPidOf(sb: Sandbox): number {
  const kids = childrenOf(sb.pid);
  assert.equal(kids.length, 1);
  return kids[0];
}

const spec = (command?: string, extra: Partial<ProcessSpec> = {}): ProcessSpec => ({
  user: level.user,
  command,
  env: { PATH: '/usr/bin:/bin', TERM: 'dumb' },
  ...extra,
});

async function output(p: SandboxProcess): Promise<{ out: string; err: string; status: unknown }> {
  let out = '';
  let err = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  p.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const status = await p.exited;
  return { out, err, status };
}

test('exec: stdout and stderr apart, exit code, user, home, hostname', async () => {
  await withSandbox(async (sb) => {
    const p = await sb.spawn(spec('echo out; echo err >&2; id -un; pwd; hostname; exit 5'));
    p.stdin.end();
    assert.deepEqual(await output(p), { out: 'out\nlevel0\n/home/level0\nconformance\n', err: 'err\n', status: { code: 5 } });
  });
});

test('exec: a program killed by a signal reports the signal', async () => {
  await withSandbox(async (sb) => {
    const p = await sb.spawn(spec('kill -SEGV $$'));
    p.stdin.end();
    assert.deepEqual((await output(p)).status, { signal: 'SEGV', coreDumped: false });
  });
});

test('exec: input reaches the program and end of input ends it', async () => {
  await withSandbox(async (sb) => {
    const p = await sb.spawn(spec('wc -c'));
    p.stdin.end('12345');
    assert.deepEqual(await output(p), { out: '5\n', err: '', status: { code: 0 } });
  });
});

test('signal(): delivered to the program inside', async () => {
  await withSandbox(async (sb) => {
    const p = await sb.spawn(spec('trap "echo got-usr1; exit 0" USR1; echo ready; while :; do sleep 0.05; done'));
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    while (!out.includes('ready')) await once(p.stdout, 'data');
    p.signal('USR1');
    assert.deepEqual(await p.exited, { code: 0 });
    assert.equal(out, 'ready\ngot-usr1\n');
  });
});

test('pty: a terminal of the sandbox, with the requested size, that follows resizes', async () => {
  await withSandbox(async (sb) => {
    const p = await sb.spawn(spec(undefined, { pty: { term: 'xterm', cols: 100, rows: 30 } }));
    let screen = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (screen += d));
    const waitFor = async (re: RegExp) => {
      while (!re.test(screen)) await once(p.stdout, 'data');
    };
    p.stdin.write('tty; stty size; echo A$((6*7))\n');
    await waitFor(/A42/);
    assert.match(screen, /\/dev\/pts\/\d+\r\n30 100\r\n/);
    p.resize(120, 40);
    p.stdin.write('stty size; echo B$((6*7))\n');
    await waitFor(/B42/);
    assert.match(screen, /40 120\r\n/);
    p.stdin.write('exit 3\n');
    assert.deepEqual(await p.exited, { code: 3 });
  });
});

test('hangup(): ends a terminal session and a command, and the sandbox lives on', async () => {
  await withSandbox(async (sb) => {
    const shell = await sb.spawn(spec(undefined, { pty: { term: 'xterm', cols: 80, rows: 24 } }));
    const cmd = await sb.spawn(spec('sleep 1000'));
    shell.stdout.resume();
    cmd.stdout.resume();
    shell.hangup();
    cmd.hangup();
    await shell.exited; // the status of a hung-up terminal session goes nowhere: it only has to end
    assert.deepEqual(await cmd.exited, { signal: 'HUP', coreDumped: false });
    // The login shell is gone (its status came from PID 1, which reaped it), and the sandbox lives on.
    const after = await sb.spawn(spec("pgrep -c -f -- '^-bash'; echo alive"));
    after.stdin.end();
    assert.equal((await output(after)).out, '0\nalive\n');
  });
});

test('processes of one sandbox share it; destroy() kills double-forked daemons', async () => {
  await withSandbox(async (sb) => {
    const a = await sb.spawn(spec('echo shared > /tmp/mark; setsid nohup sleep 1000 >/dev/null 2>&1 & echo started'));
    a.stdin.end();
    assert.equal((await output(a)).out, 'started\n');
    const b = await sb.spawn(spec('cat /tmp/mark; pgrep -c sleep'));
    b.stdin.end();
    assert.deepEqual(await output(b), { out: 'shared\n1\n', err: '', status: { code: 0 } });
  });
});

test('spawn() after destroy() is refused with WG_ERR_SANDBOX_GONE', async () => {
  let dead: Sandbox | undefined;
  await withSandbox(async (sb) => void (dead = sb));
  await assert.rejects(dead!.spawn(spec('true')), { code: 'WG_ERR_SANDBOX_GONE' });
});

test('reap(): kills what a record of a dead gateway names and removes the record; a stale record is just removed', async () => {
  const records = join(stateDir, 'sandboxes');
  // A process standing in for a sandbox left by a gateway that died, and a record whose pid was recycled.
  const orphan = spawn('sleep', ['1000'], { stdio: 'ignore' });
  await once(orphan, 'spawn');
  writeFileSync(join(records, 'orphan.json'), JSON.stringify({ pid: orphan.pid, startTime: processStartTime(orphan.pid!) }));
  writeFileSync(join(records, 'recycled.json'), JSON.stringify({ pid: process.pid, startTime: 1 }));
  const exited = once(orphan, 'exit');
  assert.equal(await backend.reap(), 2);
  const [, signal] = await exited;
  assert.equal(signal, 'SIGKILL');
  assert.ok(!existsSync(join(records, 'orphan.json')));
  assert.equal(process.kill(process.pid, 0), true, 'a pid whose start time differs is never signalled');
});
