// The cgroup drivers' own logic against a fake cgroupfs (plain directories): which files they write
// with which values, what they read back, that they stay inside their own subtree, and how they kill.
// The real kernel behaviour is covered end to end (these machines run v1; v2 hosts run the same suite).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CgroupV1Driver, type V1Mounts } from '../src/cgroup/cgroup-v1.js';
import { CgroupV2Driver } from '../src/cgroup/cgroup-v2.js';

let root: string;
before(() => (root = mkdtempSync(join(tmpdir(), 'wargate-fake-cgroupfs-'))));
after(() => rmSync(root, { recursive: true, force: true }));

const read = (...path: string[]) => readFileSync(join(...path), 'utf8');
const LIMITS = { memoryBytes: 64 << 20, pids: 100, cpuWeight: 50 };

/** A real process listed in a fake cgroup.procs; the file is emptied when it dies, as the kernel would. */
async function fakeMember(procs: string): Promise<ReturnType<typeof spawn>> {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  await once(child, 'spawn');
  writeFileSync(procs, `${child.pid}\n`);
  child.once('exit', () => writeFileSync(procs, ''));
  return child;
}

test('v2: enables controllers down its own branch only, applies limits, reads stats, lists only sandbox names', () => {
  const v2 = join(root, 'v2');
  for (const dir of [v2, join(v2, 'wargate'), join(v2, 'wargate', 'inst')]) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'cgroup.subtree_control'), dir === v2 ? 'cpu io memory pids\n' : '');
  }
  mkdirSync(join(v2, 'other.slice'));
  writeFileSync(join(v2, 'other.slice', 'cgroup.subtree_control'), 'untouched');

  const driver = new CgroupV2Driver(v2, 'inst');
  assert.equal(read(v2, 'cgroup.subtree_control'), 'cpu io memory pids\n', 'the root already had them: not rewritten');
  assert.equal(read(v2, 'wargate', 'cgroup.subtree_control'), '+memory +pids +cpu');
  assert.equal(read(v2, 'wargate', 'inst', 'cgroup.subtree_control'), '+memory +pids +cpu');
  assert.equal(read(v2, 'other.slice', 'cgroup.subtree_control'), 'untouched');

  const cg = driver.create('abc123', LIMITS);
  const dir = join(v2, 'wargate', 'inst', 'abc123');
  assert.equal(read(dir, 'memory.max'), String(64 << 20));
  assert.equal(read(dir, 'pids.max'), '100');
  assert.equal(read(dir, 'cpu.weight'), '50');
  assert.deepEqual(cg.procsFiles, [join(dir, 'cgroup.procs')]);

  writeFileSync(join(dir, 'memory.current'), '12345\n');
  writeFileSync(join(dir, 'pids.current'), '7\n');
  assert.deepEqual(cg.stats(), { memoryBytes: 12345, pids: 7 });

  mkdirSync(join(v2, 'wargate', 'inst', 'Not-A-Sandbox!'));
  assert.deepEqual(driver.list(), ['abc123']);
  assert.throws(() => driver.create('abc123', LIMITS), { code: 'WG_ERR_CGROUP' });
});

test('v2 without cgroup.kill: freeze, SIGKILL every member, thaw, wait until empty', async () => {
  const dir = join(root, 'v2', 'wargate', 'inst', 'abc123');
  const member = await fakeMember(join(dir, 'cgroup.procs'));
  const exited = once(member, 'exit');
  await new CgroupV2Driver(join(root, 'v2'), 'inst').open('abc123').killAll();
  assert.deepEqual((await exited)[1], 'SIGKILL');
  assert.equal(read(dir, 'cgroup.freeze'), '0', 'thawed again');
});

test('v1: one directory per hierarchy under wargate/<instance>, limits as v1 knobs, kill through the freezer', async () => {
  const mounts = Object.fromEntries(['memory', 'pids', 'cpu', 'freezer'].map((c) => [c, join(root, 'v1', c)])) as V1Mounts;
  const driver = new CgroupV1Driver(mounts, 'inst');
  for (const c of Object.values(mounts)) mkdirSync(join(c, 'wargate', 'inst', 'def456'));
  writeFileSync(join(mounts.memory, 'wargate', 'inst', 'def456', 'memory.memsw.limit_in_bytes'), '');
  const cg = driver.create('def456', LIMITS);
  const at = (c: keyof V1Mounts, file: string) => read(mounts[c], 'wargate', 'inst', 'def456', file);
  assert.equal(at('memory', 'memory.limit_in_bytes'), String(64 << 20));
  assert.equal(at('memory', 'memory.memsw.limit_in_bytes'), String(64 << 20), 'no swap beyond the limit');
  assert.equal(at('pids', 'pids.max'), '100');
  assert.equal(at('cpu', 'cpu.shares'), '512', 'weight 50 of 100 is half of 1024 shares');
  assert.equal(cg.procsFiles.length, 4);
  assert.deepEqual(driver.list(), ['def456']);

  const member = await fakeMember(join(mounts.freezer, 'wargate', 'inst', 'def456', 'cgroup.procs'));
  const exited = once(member, 'exit');
  await cg.killAll();
  assert.deepEqual((await exited)[1], 'SIGKILL');
  assert.equal(at('freezer', 'freezer.state'), 'THAWED');
});
