// The demo game is playable end to end with the OpenSSH client: each level's password leads to the
// next, through a readme, a hidden file, a setuid program and a grep. Its secrets live in the state
// dir only, survive a restart, and the host keys do too.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ssh } from './helpers/clients.js';
import { sharedGateway } from './helpers/shared-gateway.js';
import { REPO, TestGateway } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';

let gw: TestGateway;
sharedGateway((g) => (gw = g));

/** Logs in as `user` with `password` and runs `command`; returns its stdout. */
async function play(user: string, password: string, command: string): Promise<string> {
  const r = await ssh(gw, user, ['--', command], '', password);
  assert.equal(r.code, 0, `${user}: ${command}: ${r.stderr}`);
  return r.stdout;
}

test('the demo campaign can be played from level0 to level4 with what each level reveals', async () => {
  const readme = await play('level0', 'level0', 'cat readme');
  const pw1 = readme.trim().split('\n').at(-1)!;

  const pw2 = (await play('level1', pw1, 'cat inhere/.*  2>/dev/null')).trim();
  assert.equal((await play('level1', pw1, 'ls inhere')).trim(), '', 'the file is hidden from a plain ls');

  const pw3 = (await play('level2', pw2, './run-as-level3 cat /etc/demo_pass/level3')).trim();
  const pw4 = (await play('level3', pw3, 'grep millionth data.txt')).trim().split(/\s+/)[1];
  assert.match(await play('level4', pw4, 'cat congratulations'), /last level/);

  assert.deepEqual([pw1, pw2, pw3, pw4], ['level1', 'level2', 'level3', 'level4'].map((l) => gw.password(l)));
});

test('a wrong password is refused', async () => {
  const r = await ssh(gw, 'level1', ['--', 'true'], '', 'level0');
  assert.equal(r.code, 255);
  assert.match(r.stderr, /Permission denied/);
});

test('each level can read its own password file and no other', async () => {
  assert.equal((await play('level0', 'level0', 'cat /etc/demo_pass/level0')).trim(), 'level0');
  const r = await ssh(gw, 'level0', ['--', 'cat /etc/demo_pass/level1'], '', 'level0');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Permission denied/);
  assert.equal(r.stdout, '');
});

test('generated passwords are random, kept in the state dir (mode 0600) and stable across restarts', async () => {
  const file = join(gw.stateDir, 'games/demo/passwords.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  const definition = readFileSync(join(REPO, 'games/demo/game.yaml'), 'utf8');
  // Every level but level0 (whose password is fixed) has a generated one.
  const generated = [...definition.matchAll(/^  - user: (level\d+)$/gm)].map((m) => m[1]).filter((u) => u !== 'level0');
  assert.ok(generated.length >= 6);
  assert.deepEqual(Object.keys(saved).sort(), generated.sort());
  for (const pw of Object.values(saved)) assert.match(pw, /^[A-Za-z0-9]{32}$/);
  assert.equal(new Set(Object.values(saved)).size, generated.length);
  for (const pw of Object.values(saved)) assert.ok(!definition.includes(pw), 'a generated password is in the repository');

  const keysBefore = execFileSync('ssh-keyscan', ['-p', String(gw.port), '-t', 'ed25519,rsa', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  assert.match(keysBefore, /ssh-ed25519/);
  assert.match(keysBefore, /ssh-rsa/);

  await gw.stop();
  await assertNothingLeft(gw);
  const again = await TestGateway.start({ stateDir: gw.stateDir });
  try {
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), saved);
    const keysAfter = execFileSync('ssh-keyscan', ['-p', String(again.port), '-t', 'ed25519,rsa', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    const keys = (s: string) => s.split('\n').filter(Boolean).map((l) => l.split(' ').slice(1).join(' ')).sort();
    assert.deepEqual(keys(keysAfter), keys(keysBefore));
  } finally {
    await again.stop();
    await assertNothingLeft(again);
  }
});
