// A game's runtime mechanisms against a real gateway: cron jobs run inside every live sandbox of the
// game (seeing that player's files, as the level user, never overlapping, killed at their timeout,
// nothing resident between runs, following a reload), and the demo's custom login shells (an
// uppercasing shell escaped with $0, a pager escaped through vi on a small terminal). The gateway serves a copy of
// the demo game whose cron runs every 10 s instead of 60, plus one job for the timeout test;
// sharedGateway proves afterwards that no sandbox left anything.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseYaml } from '../src/config/load-yaml.js';
import { gameSchema } from '../src/config/schema.js';
import { paramiko, ssh } from './helpers/clients.js';
import { REPO, WARGATE, type LogEntry, type TestGateway } from './helpers/gateway.js';
import { gameProblems, oneLevelGame } from './helpers/test-games.js';
import { processesIn } from './helpers/leftovers.js';
import { SessionDriver } from './helpers/session-driver.js';
import { sharedGateway } from './helpers/shared-gateway.js';

const CRON_SECONDS = 10;
/** A tick that starts after a given moment has ended: at most one interval plus the run, and some slack. */
const TICK_WAIT_MS = (CRON_SECONDS + 15) * 1000;

/** The test game's own job (its job 0): as level0, it hangs while /tmp/cron-hang exists, until its timeout. */
const HANG_TIMEOUT = 20;
const HANG_JOB = `  - every: ${CRON_SECONDS}\n    level: level0\n    timeout: ${HANG_TIMEOUT}\n    command: "if [ -e /tmp/cron-hang ]; then sleep 1000 & echo $! > /tmp/cron-hang; wait; fi"\n`;

const gameDir = mkdtempSync(join(tmpdir(), 'wg-games-runtime-'));
cpSync(join(REPO, 'games/demo'), gameDir, { recursive: true });
chmodSync(gameDir, 0o755); // mkdtemp's 0700 would shut out the build steps' root (an unprivileged id) from /build
const demo = readFileSync(join(REPO, 'games/demo/game.yaml'), 'utf8');
assert.match(demo, /^cron:\n  - every: 60\n/m, 'the demo game runs its cron job every minute');
writeFileSync(join(gameDir, 'game.yaml'), demo.replace(/^cron:\n  - every: 60\n/m, `cron:\n  - every: ${CRON_SECONDS}\n`).replace(/^cron:\n/m, `cron:\n${HANG_JOB}`));

let gw: TestGateway;
sharedGateway((g) => (gw = g), { config: { games: [gameDir] } });
after(() => rmSync(gameDir, { recursive: true, force: true }));

const SPOOL_JOB = 1; // the demo's spool job: job 0 of the test game is the hang job, inserted first
const HANG = 0;

/** The first cron.tick of `job` that started at or after `since` and ran in at least `ran` sandboxes. */
function tickAfter(job: number, since: number, ran = 1): Promise<LogEntry> {
  return gw.waitFor((e) => e.event === 'cron.tick' && e.job === job && (e.startedAt as number) >= since && (e.ran as number) >= ran, TICK_WAIT_MS);
}

/** The pid namespace of the sandbox behind a login of `driver` ("pid:[4026...]"), as the host names it. */
async function pidNamespace(driver: SessionDriver, login: number): Promise<string> {
  const r = await driver.exec(login, 'readlink /proc/self/ns/pid');
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

/** A player's script for the spool: run by the cron job as level5, it writes what it sees into /tmp/out. */
function dropScript(mark: string, body: string): string {
  const script = `#!/bin/sh\n${body}\n`;
  return [
    'mkdir -p -m 777 /tmp/out',
    `printf '%s' '${script.replace(/'/g, `'\\''`)}' > /var/spool/level5/job-${mark}`,
    `chmod 755 /var/spool/level5/job-${mark}`,
  ].join(' && ');
}

test('game schema: a cron job must name a level of the game and run at most every 10 s', () => {
  const game = oneLevelGame('cron');
  const problems = gameProblems;
  const parsed = parseYaml(game('  - { every: 10, level: level0, command: "true" }\n'), 'game.yaml', gameSchema);
  assert.deepEqual(parsed.cron, [{ every: 10, level: 'level0', command: 'true' }]);

  assert.deepEqual(problems(game('  - { every: 60, level: level9, command: "true" }\n')), [
    { line: 8, field: 'cron.0.level', message: '"level9" is not a level user of this game' },
  ]);
  assert.deepEqual(problems(game('  - { every: 60, level: root, command: "true" }\n')).map((p) => p.field), ['cron.0.level']);
  const tooOften = problems(game('  - { every: 60, level: level0, command: "true" }\n  - every: 5\n    level: level0\n    command: "true"\n'));
  assert.equal(tooOften.length, 1);
  assert.equal(tooOften[0].field, 'cron.1.every');
  assert.equal(tooOften[0].line, 9);
  assert.match(tooOften[0].message, /at least 10 seconds/);
  assert.deepEqual(problems(game('  - { every: 60, level: level0 }\n')).map((p) => p.field), ['cron.0.command']);
  // a directory of the layer (the spool) carries no content
  const dir = problems(game('  []\nfiles:\n  - { path: /var/spool/x, directory: true, content: "y" }\n'));
  assert.deepEqual(dir.map((p) => [p.field, p.message]), [['files.0', 'expected a directory without content, source or compile']]);
});

test('cron runs inside each of two live sandboxes, as level5, on that player\'s own spool files only', { timeout: 60_000 }, async () => {
  const driver = await SessionDriver.start(gw, [
    { user: 'level4', password: gw.password('level4') },
    { user: 'level4', password: gw.password('level4') },
  ]);
  try {
    // Each player drops a script that records who runs it, what it finds in the spool and in /tmp/out.
    for (const [login, mark] of [[0, 'a'], [1, 'b']] as const) {
      const body = `id -un > /tmp/out/who-${mark}\nls -a /var/spool/level5 > /tmp/out/spool-${mark}\nls /tmp/out > /tmp/out/tmp-${mark}`;
      const r = await driver.exec(login, dropScript(mark, body));
      assert.equal(r.status, 0, r.stderr);
    }
    const dropped = Date.now();
    const tick = await tickAfter(SPOOL_JOB, dropped, 2);
    assert.equal(tick.failed, 0, JSON.stringify(tick));

    for (const [login, mine, theirs] of [[0, 'a', 'b'], [1, 'b', 'a']] as const) {
      const r = await driver.exec(login, `cat /tmp/out/who-${mine}; echo --; cat /tmp/out/spool-${mine}; echo --; cat /tmp/out/tmp-${mine}; echo --; stat -c %U /tmp/out/who-${mine}; ls /tmp/out; test -e /var/spool/level5/job-${mine} && echo still-there; true`);
      assert.equal(r.status, 0, r.stderr);
      const [who, spool, tmp, rest] = r.stdout.split('--\n');
      assert.equal(who, 'level5\n', 'the job ran as level5');
      assert.deepEqual(spool.split('\n').filter(Boolean), ['.', '..', `job-${mine}`], `login ${login}'s job saw only its own player's script`);
      assert.deepEqual(tmp.split('\n').filter(Boolean), [`spool-${mine}`, `tmp-${mine}`, `who-${mine}`], 'and only its own player\'s /tmp');
      assert.deepEqual(rest.split('\n').filter(Boolean), ['level5', `spool-${mine}`, `tmp-${mine}`, `who-${mine}`], `the job removed the script; nothing of login ${theirs} is here`);
    }
    console.log(`cron tick in 2 sandboxes: ${tick.ms} ms in all, slowest run ${tick.maxRunMs} ms`);
  } finally {
    await driver.quit();
  }
});

test('between ticks an idle sandbox holds no process for cron: its pid namespace has only its init', { timeout: 60_000 }, async () => {
  const driver = await SessionDriver.start(gw, [{ user: 'level3', password: gw.password('level3') }]);
  try {
    const pidns = await pidNamespace(driver, 0);
    const inNamespace = () => processesIn(new Set([pidns]), (_pid, ns) => ns === pidns);
    const since = Date.now();
    // Both jobs tick together (same interval, started together); wait until both have run here.
    const [spool, hang] = await Promise.all([tickAfter(SPOOL_JOB, since), tickAfter(HANG, since)]);
    assert.equal(spool.failed, 0);
    assert.equal(hang.failed, 0);
    const counts: number[] = [];
    for (let i = 0; i < 10; i++) {
      counts.push(inNamespace().length);
      await new Promise((r) => setTimeout(r, 200));
    }
    const [pid] = inNamespace();
    assert.deepEqual(counts, Array(10).fill(1), `processes in the sandbox's pid namespace after a tick: ${counts}`);
    assert.match(readFileSync(`/proc/${pid}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m, 'the one process is the sandbox\'s PID 1');
    console.log(`processes in an idle sandbox between cron ticks: ${counts[0]} (its PID 1)`);
  } finally {
    await driver.quit();
  }
});

test('a cron run is never started twice in one sandbox, and is killed with what it started at its timeout', { timeout: 90_000 }, async () => {
  const driver = await SessionDriver.start(gw, [{ user: 'level0', password: 'level0' }]);
  try {
    const pidns = await pidNamespace(driver, 0);
    const sleepers = () => processesIn(new Set([pidns]), (pid, ns) => ns === pidns && readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep\0'));
    assert.equal((await driver.exec(0, 'touch /tmp/cron-hang')).status, 0);
    const since = Date.now();
    // The run that hangs: its tick ends only when the timeout has killed it.
    const hung = gw.waitFor((e) => e.event === 'cron.failed' && e.job === HANG && e.timedOut === true, TICK_WAIT_MS + HANG_TIMEOUT * 1000);
    const skipped = gw.waitFor((e) => e.event === 'cron.tick' && e.job === HANG && (e.startedAt as number) >= since && (e.skipped as number) >= 1, TICK_WAIT_MS + HANG_TIMEOUT * 1000);
    const sleeper = await poll(() => sleepers().length === 1, TICK_WAIT_MS);
    assert.ok(sleeper, 'the job started its sleep in the sandbox');
    const r = await driver.exec(0, 'stat -c %U "/proc/$(cat /tmp/cron-hang)"');
    assert.equal(r.stdout, 'level0\n', 'the job runs as its level');
    await skipped; // the next tick skipped this sandbox, whose run was still going
    const failure = await hung;
    const sandbox = gw.events('sandbox.start').find((e) => e.pidns === pidns)!.sandbox;
    assert.equal(failure.sandbox, sandbox, 'the failure is logged with the sandbox id');
    assert.ok(await poll(() => sleepers().length === 0, 2000), 'the timeout killed the job\'s background sleep too');
  } finally {
    await driver.quit();
  }
});

test('level5\'s uppercase shell: commands are shouted and fail, $0 escapes to a real shell as level6', { timeout: 60_000 }, async () => {
  // over an exec channel (ssh level5@host -- COMMAND), as a player first tries
  const shouted = await ssh(gw, 'level5', ['--', 'cat /etc/demo_pass/level6']);
  assert.equal(shouted.code, 127);
  assert.match(shouted.stderr, /CAT: not found/);
  const escaped = await ssh(gw, 'level5', ['--', '$0'], 'id -un\ncat /etc/demo_pass/level6\n');
  assert.equal(escaped.code, 0, escaped.stderr);
  assert.deepEqual(escaped.stdout.split('\n'), ['level6', gw.password('level6'), '']);

  // interactively, on a terminal
  const run = await paramiko<{ steps: { output: string; matched: boolean }[]; status: number | null }>(gw, 'channels_pty_script', 'level5', {
    term: 'xterm', cols: 80, rows: 24,
    steps: [
      { expect: 'UPPERCASE SHELL\\r\\n>> ' },
      { send: 'ls -a\r', expect: 'LS: not found\\r\\n>> ' },
      { send: '$0\r', expect: '\\$ ' },
      { send: 'id -un\r', expect: 'level6\\r\\n\\$ ' },
      { send: 'exit\r', expect: '>> ' },
      { send: '\x04', expect: '\\n' },
    ],
  });
  assert.ok(run.steps.every((s) => s.matched), JSON.stringify(run.steps));
  assert.equal(run.status, 0);
});

test('level6\'s pager shell: on a 5-row terminal more waits, v opens vi, and :! runs commands as level6', { timeout: 60_000 }, async () => {
  // The pager runs /usr/bin/vi: the host's alternatives link, copied into the sandbox's /etc.
  const vi = await ssh(gw, 'level0', ['--', 'ls -l /etc/alternatives/vi; readlink -e /usr/bin/vi']);
  assert.equal(vi.code, 0, `vi does not resolve in a sandbox (scripts/setup.sh installs vim-tiny): ${vi.stdout}${vi.stderr}`);
  // Any vi: vim.tiny (Debian's default vi, compatible mode) says "10 lines" and has no ruler, vim "10L".
  const run = await paramiko<{ steps: { output: string; matched: boolean }[]; rest: string; status: number | null }>(gw, 'channels_pty_script', 'level6', {
    term: 'xterm', cols: 80, rows: 5,
    steps: [
      { expect: 'It has a beginning,\\r\\nand a middle,\\r\\n\\x1b\\[7m--More--' },
      { send: 'v', expect: '"~/text\\.txt" 10( lines|L)' },
      { send: ':!id -un; ~/trophy\r', expect: 'Press ENTER' },
      { send: '\r', pause: 0.3, expect: 'and a middle,' },
      { send: ':q\r', expect: '--More--' },
      { send: 'q', expect: '$' },
    ],
    closeTimeout: 10,
  });
  assert.ok(run.steps.every((s) => s.matched), JSON.stringify(run.steps));
  const shell = run.steps[2].output;
  assert.match(shell, /level6\r\nYou escaped the pager as level6\./, 'the commands ran as level6');
  assert.equal(run.status, 0, 'quitting more ends the session');

  // On a terminal tall enough for the text, more never waits: the login is over at once.
  const tall = await paramiko<{ steps: { output: string; matched: boolean }[]; rest: string; status: number | null; timedOut: boolean }>(gw, 'channels_pty_script', 'level6', {
    term: 'xterm', cols: 80, rows: 40, steps: [{ expect: 'goodbye' }], closeTimeout: 10,
  });
  assert.ok(tall.steps[0].matched, JSON.stringify(tall));
  assert.equal(tall.timedOut, false);
  assert.equal(tall.status, 0);
  assert.doesNotMatch(tall.steps[0].output + tall.rest, /--More--/);
});

test('level4 -> level5 -> level6 as a player: a script in the spool hands over level5\'s password', { timeout: 60_000 }, async () => {
  const driver = await SessionDriver.start(gw, [{ user: 'level4', password: gw.password('level4') }]);
  let found: string;
  try {
    const goal = await driver.exec(0, 'cat /etc/cron.d/cronjob_level5; cat "$(awk \'/^[*]/ { print $7 }\' /etc/cron.d/cronjob_level5)"');
    assert.match(goal.stdout, /level5 \/opt\/demo\/bin\/cronjob_level5\.sh/);
    assert.match(goal.stdout, /\/var\/spool\/\$me/, 'the script the player reads says where to drop');
    const drop = await driver.exec(0, dropScript('solve', 'cat /etc/demo_pass/level5 > /tmp/out/pw'));
    assert.equal(drop.status, 0, drop.stderr);
    await tickAfter(SPOOL_JOB, Date.now());
    found = (await driver.exec(0, 'cat /tmp/out/pw')).stdout.trim();
  } finally {
    await driver.quit();
  }
  assert.equal(found, gw.password('level5'));
  const level6 = await ssh(gw, 'level5', ['--', '$0'], 'cat /etc/demo_pass/level6\n', found);
  assert.equal(level6.code, 0, level6.stderr);
  assert.equal(level6.stdout.trim(), gw.password('level6'));
  const pager = await ssh(gw, 'level6', ['--', 'true'], '', level6.stdout.trim());
  assert.equal(pager.code, 0, 'level6 accepts it (without a terminal its pager prints the text)');
  assert.match(pager.stdout, /goodbye/);
});

test('cron follows a reload: the changed command runs, but not beside a run of the job still going', { timeout: 180_000 }, async () => {
  const yaml = readFileSync(join(gameDir, 'game.yaml'), 'utf8');
  // The hang job's new command notes the start of each run (ms since the epoch) in the sandbox.
  writeFileSync(join(gameDir, 'game.yaml'), yaml.replace(HANG_JOB, HANG_JOB.replace(/command: .*/, 'command: "date +%s%3N >> /tmp/cron-v2"')));
  const config = join(gw.stateDir, 'test-config.yaml');
  // Built first, so the reload itself is quick (the old run must still be going after it).
  const build = spawnSync(WARGATE, ['build', '--config', config], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(build.status, 0, build.stderr);
  const driver = await SessionDriver.start(gw, [
    { user: 'level0', password: 'level0' },
    { user: 'level0', password: 'level0' },
  ]);
  try {
    // Login 0's run of the old command hangs until its timeout; the reload comes while it does.
    const pidns = await pidNamespace(driver, 0);
    assert.equal((await driver.exec(0, 'touch /tmp/cron-hang')).status, 0);
    const hanging = () => processesIn(new Set([pidns]), (pid, ns) => ns === pidns && readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep\0')).length === 1;
    assert.ok(await poll(hanging, TICK_WAIT_MS), 'the old command hangs in login 0\'s sandbox');
    const reload = spawnSync(WARGATE, ['reload', '--config', config], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(reload.status, 0, reload.stderr);
    const reloaded = Date.now();
    const sandbox = gw.events('sandbox.start').find((e) => e.pidns === pidns)!.sandbox;

    const skipped = await gw.waitFor((e) => e.event === 'cron.tick' && e.job === HANG && (e.startedAt as number) >= reloaded && (e.skipped as number) >= 1, TICK_WAIT_MS);
    assert.equal(skipped.ran, 1, 'the new command ran in login 1\'s sandbox, login 0\'s was skipped');
    const ended = await gw.waitFor((e) => e.event === 'cron.failed' && e.sandbox === sandbox && e.timedOut === true, (HANG_TIMEOUT + 5) * 1000);
    assert.ok(await poll(() => !hanging(), 2000), 'the old run is over, its sleep too');
    await tickAfter(HANG, ended.time as number, 2);

    const runs = async (login: number) => (await driver.exec(login, 'cat /tmp/cron-v2')).stdout.split('\n').filter(Boolean).map(Number);
    assert.ok((await runs(1)).length >= 2, 'login 1 ran the new command at each tick after the reload');
    const inHung = await runs(0);
    assert.ok(inHung.length >= 1, 'login 0 runs the new command once the old run has ended');
    assert.ok(inHung.every((t) => t >= (ended.time as number)), `no run of the new command in login 0 before the old run ended at ${ended.time as number}: ${inHung}`);
  } finally {
    await driver.quit();
    writeFileSync(join(gameDir, 'game.yaml'), yaml);
  }
});

async function poll(check: () => boolean, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}
