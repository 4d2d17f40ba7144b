// The demo game is playable with the OpenSSH client: each level's password leads to the next,
// through a readme, a hidden file, a setuid program and a grep; later, a find among look-alikes and a
// ~/.bashrc that logs interactive shells out; at the end two public challenge ports, a fresh sandbox
// per connection (5842) and a daemon (5843). The campaign has 23 levels, each with a goal and a
// solver (test/check.test.ts plays them all). Its secrets live in the state dir only, survive a
// restart, and the host keys do too.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadYamlFile } from '../src/config/load-yaml.js';
import { gameSchema } from '../src/config/schema.js';
import { ssh } from './helpers/clients.js';
import { sharedGateway } from './helpers/shared-gateway.js';
import { REPO, TestGateway } from './helpers/gateway.js';
import { assertNothingLeft, cgroupsOf, descendsFrom, processesIn } from './helpers/leftovers.js';

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
  assert.match(await play('level4', pw4, 'cat congratulations'), /You reached level4 of the wargate demo\./);

  assert.deepEqual([pw1, pw2, pw3, pw4], ['level1', 'level2', 'level3', 'level4'].map((l) => gw.password(l)));
});

test('the campaign: level0 .. level22 (uids 12000 ..), each with a goal for players and a solver', () => {
  const demo = loadYamlFile(join(REPO, 'games/demo/game.yaml'), gameSchema);
  assert.deepEqual(demo.levels.map((l) => [l.user, l.uid]), Array.from({ length: 23 }, (_, n) => [`level${n}`, 12000 + n]));
  for (const level of demo.levels) {
    assert.match(level.goal ?? '', /\S/, `${level.user} has a goal`);
    assert.ok(level.solver !== undefined && existsSync(join(REPO, 'games/demo', level.solver)), `${level.user} has a solver`);
  }
  // Each goal leads on: only the last one says the campaign ends there.
  const ends = demo.levels.filter((l) => /\blast level\b|\bthe end\b/i.test(l.goal ?? '')).map((l) => l.user);
  assert.deepEqual(ends, ['level22']);
  // The public challenges: level20's goal leads to 5842, whose handler holds level21's password;
  // level21's to 5843, whose daemon holds level22's.
  assert.deepEqual(demo.challenges.map((c) => [c.port, c.mode, c.level]), [[5842, 'per-connection', 'level21'], [5843, 'daemon', 'level22']]);
  assert.match(demo.levels[20].goal!, /\b5842\b/);
  assert.match(demo.levels[21].goal!, /\b5843\b/);
});

/** One TCP conversation with a public challenge port of the demo: sends `input`, then its side's end; returns all it answers. */
function talk(port: number, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port + gw.challengePortOffset, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
    socket.end(input);
  });
}

/** A conversation of several turns with a public challenge port: `until` waits for a pattern in all it has said. */
function dialog(port: number): { send(text: string): void; until(pattern: RegExp, ms?: number): Promise<RegExpExecArray>; ended: Promise<string> } {
  const socket = connect(port + gw.challengePortOffset, '127.0.0.1');
  let said = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (said += d));
  socket.on('error', () => {});
  return {
    ended: new Promise((resolve) => socket.on('end', () => resolve(said))),
    send: (text) => void socket.write(text),
    async until(pattern, ms = 10_000) {
      for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
        const m = pattern.exec(said);
        if (m) return m;
      }
      socket.destroy();
      throw new Error(`did not see ${pattern} in ${JSON.stringify(said)}`);
    },
  };
}

test('level20: the visitor desk on port 5842 greets a name; each connection has a fresh sandbox, gone when it ends', async () => {
  const pw21 = gw.password('level21');
  const greeted = await talk(5842, 'Ada\n');
  assert.equal(greeted, "Front desk of wargate-demo.\nPlease sign the visitors' book.\nName: Welcome, Ada! Enjoy your visit.\n");
  // A name too long spills into the badge number; a wrong one is only remarked on.
  const spilled = await talk(5842, `${'A'.repeat(40)}\n`);
  assert.match(spilled, /Welcome, A{32}! Enjoy your visit\.\n\(Badge 0x41414141\? That is not one of ours\.\)\n$/);
  assert.ok(!greeted.includes(pw21) && !spilled.includes(pw21), 'no password for a visitor');
  const staff = await talk(5842, `${'A'.repeat(32)}staf\n`);
  assert.match(staff, new RegExp(`Good evening, colleague\\.\nThe password for level21 is ${pw21}\n$`));

  // Three connections, three sandboxes (each its own pid namespace), each ended with its connection.
  const port = 5842 + gw.challengePortOffset;
  const endsOf = () => gw.events('challenge.end').filter((e) => e.port === port);
  await gw.waitFor(() => endsOf().length === 3);
  assert.deepEqual(endsOf().map((e) => e.reason), ['handler-exited', 'handler-exited', 'handler-exited']);
  const sandboxes = gw.events('challenge.start').filter((e) => e.port === port).map((e) => e.sandbox as string);
  assert.equal(new Set(sandboxes).size, 3);
  const started = sandboxes.map((id) => gw.events('sandbox.start').find((e) => e.sandbox === id)!);
  assert.equal(new Set(started.map((e) => e.pidns)).size, 3, 'a pid namespace of its own each');
  // Nothing of them is left: no process in their namespaces, no cgroup, no record.
  const namespaces = new Set(started.flatMap((e) => [e.pidns as string, e.mntns as string]));
  assert.deepEqual(processesIn(namespaces, (pid, ns) => ns.startsWith('pid:') || descendsFrom(pid, gw.proc.pid!)), []);
  assert.deepEqual(cgroupsOf(gw.stateDir, { sandboxesOnly: true }).filter((dir) => sandboxes.some((id) => dir.endsWith(id))), []);
  for (const id of sandboxes) assert.ok(!existsSync(join(gw.stateDir, 'sandboxes', `${id}.json`)), `record of ${id}`);
});

test('level21: the cloakroom on port 5843 is one daemon: a ticket for level21\'s password, collected on another connection', async () => {
  // The daemon may still be starting (the gateway says so): ask again until it answers.
  let help = '';
  for (let tries = 0; !help.startsWith('Cloakroom') && tries < 20; tries++) {
    if (tries > 0) await new Promise((r) => setTimeout(r, 500));
    help = await talk(5843, 'HELP\nQUIT\n');
  }
  assert.match(help, /^Cloakroom of wargate-demo\. HELP lists what we understand\.\n> Commands, one a line:\n/);
  assert.match(await talk(5843, 'DEPOSIT level0\nQUIT\n'), /That is not something we look after\.\n/);
  const deposited = await talk(5843, `DEPOSIT ${gw.password('level21')}\nCOLLECT nothing\nQUIT\n`);
  const ticket = /Your ticket: (\w+)\n/.exec(deposited)![1];
  assert.match(deposited, /We have nothing for that ticket\./);
  // Not on the visit that got it; on another, once.
  const same = dialog(5843);
  same.send(`DEPOSIT ${gw.password('level21')}\n`);
  const [, second] = await same.until(/Your ticket: (\w+)\n/);
  same.send(`COLLECT ${second}\nQUIT\n`);
  assert.match(await same.ended, /Your ticket: \w+\n.*\n> We are still putting it away\. Come back on another visit\.\n> $/);
  const collected = await talk(5843, `COLLECT ${ticket}\nCOLLECT ${ticket}\nQUIT\n`);
  assert.match(collected, new RegExp(`The password for level22 is ${gw.password('level22')}\n> We have nothing for that ticket\\.`));
});

test('level11: one file alone has the owner, the group and the size; each criterion matters', async () => {
  const pw11 = gw.password('level11');
  const count = async (criteria: string) => Number((await play('level11', pw11, `find maze -type f ${criteria} | wc -l`)).trim());
  assert.equal(await count('-user level12 -group level11 -size 33c'), 1);
  for (const criteria of ['-group level11 -size 33c', '-user level12 -size 33c', '-user level12 -group level11']) {
    assert.ok((await count(criteria)) > 1, `without one of them (${criteria}), more than one file`);
  }
  const found = await play('level11', pw11, 'find maze -type f -user level12 -group level11 -size 33c -exec cat {} +');
  assert.equal(found.trim(), gw.password('level12'));
});

test('level15: ~/.bashrc logs an interactive login out at once; a command given to ssh still runs', async () => {
  const pw15 = gw.password('level15');
  const interactive = await ssh(gw, 'level15', ['-tt'], 'cat readme\n', pw15);
  assert.match(interactive.stdout, /Goodbye, level15: no interactive shells on this level\./);
  assert.ok(!interactive.stdout.includes(gw.password('level16')), 'the shell ended before reading its input');
  assert.equal((await play('level15', pw15, 'cat readme')).trim(), gw.password('level16'));
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
