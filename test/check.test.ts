// `wargate check`: the demo's bundled solvers play the whole campaign (levels 0-22) over real SSH
// and the public challenge ports against a running gateway, as TAP and then as JSON (exit 0); a
// broken solver fails its level (exit 1, the reason in TAP), and a level without a solver is
// skipped, not failed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { collect, type Result } from './helpers/clients.js';
import { REPO, TestGateway, WARGATE } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';

const CRON_SECONDS = 10;
const dir = mkdtempSync(join(tmpdir(), 'wargate-check-'));
const game = join(dir, 'demo');
const broken = join(dir, 'broken');

/** A copy of the demo with its cron jobs every 10 s instead of 60 (levels 4 and 17 wait for a tick). */
function writeTestGame(): void {
  cpSync(join(REPO, 'games/demo'), game, { recursive: true });
  const doc = parse(readFileSync(join(game, 'game.yaml'), 'utf8')) as Record<string, unknown> & { cron: { every: number }[] };
  assert.deepEqual(doc.cron.map((job) => job.every), [60, 60]);
  for (const job of doc.cron) job.every = CRON_SECONDS;
  writeFileSync(join(game, 'game.yaml'), stringify(doc));
  // The same game with level0's solver broken and level1's removed.
  cpSync(game, broken, { recursive: true });
  writeFileSync(join(broken, 'solvers/broken.py'), 'print("not the password")\nraise SystemExit("the broken solver gives up")\n');
  writeFileSync(join(broken, 'game.yaml'), readFileSync(join(game, 'game.yaml'), 'utf8').replace('solver: solvers/level0.py', 'solver: solvers/broken.py').replace(/\n +solver: solvers\/level1\.py/, ''));
}

let gw: TestGateway;

before(async () => {
  writeTestGame();
  gw = await TestGateway.start({ config: { games: [game] } });
});

after(async () => {
  await gw?.stop();
  if (gw) await assertNothingLeft(gw);
  gw?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * `wargate check ARGS --port PORT`; '@state' stands for `--state-dir` of the test gateway and
 * `--port-offset` its challenge ports' offset (a state dir does not say it), '@config' for `--config`
 * its config (which does).
 */
function check(...args: string[]): Promise<Result> {
  const expanded = args.flatMap((a) =>
    a === '@state' ? ['--state-dir', gw.stateDir, '--port-offset', String(gw.challengePortOffset)] : a === '@config' ? ['--config', join(gw.stateDir, 'test-config.yaml')] : [a],
  );
  return collect(spawn(WARGATE, ['check', ...expanded, '--port', String(gw.port)], { stdio: ['pipe', 'pipe', 'pipe'] }));
}

/** The demo's levels, in order: level0 .. level22. */
const LEVELS = Array.from({ length: 23 }, (_, n) => `level${n}`);

test('check demo: the whole campaign (levels 0-22) passes as TAP, then as JSON, exit 0', { timeout: 360_000 }, async () => {
  let started = performance.now();
  const tap = await check('demo', '@config');
  const tapMs = performance.now() - started;
  assert.equal(tap.code, 0, tap.stdout + tap.stderr);
  const lines = tap.stdout.split('\n');
  assert.deepEqual(lines.slice(0, 2), ['TAP version 13', `1..${LEVELS.length}`]);
  LEVELS.forEach((level, n) => assert.match(lines[2 + n], new RegExp(`^ok ${n + 1} - demo/${level} \\(\\d+\\.\\d s\\)$`)));
  assert.match(tap.stdout, new RegExp(`^# pass ${LEVELS.length}\n# fail 0\n# skip 0$`, 'm'));
  assert.match(tap.stderr, /^demo\/level17: pass in [\d.]+ s$/m, 'progress on stderr');
  console.log(lines.slice(2, 2 + LEVELS.length).join('\n'));

  // JSON, for the whole campaign again (fresh sandboxes: nothing of the first run is left to find).
  started = performance.now();
  const json = await check('demo', '@state', '--games', game, '--json');
  const jsonMs = performance.now() - started;
  assert.equal(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout) as { ok: boolean; passed: number; failed: number; levels: { level: string; status: string; seconds: number }[] };
  assert.deepEqual({ ok: doc.ok, passed: doc.passed, failed: doc.failed }, { ok: true, passed: LEVELS.length, failed: 0 });
  assert.deepEqual(doc.levels.map((l) => [l.level, l.status]), LEVELS.map((l) => [l, 'pass']));
  for (const l of doc.levels) assert.ok(l.seconds > 0, `${l.level}: ${l.seconds} s`);
  console.log(`check: ${LEVELS.length} levels in ${Math.round(tapMs)} ms (TAP), ${Math.round(jsonMs)} ms (JSON)`);

  // One level alone, and --tap / --json are exclusive.
  const one = await check('demo', '@state', '--games', game, '--level', 'level16', '--json');
  assert.deepEqual((JSON.parse(one.stdout) as { levels: { level: string; status: string }[] }).levels.map((l) => [l.level, l.status]), [['level16', 'pass']]);
  const both = await check('demo', '@state', '--games', game, '--json', '--tap');
  assert.notEqual(both.code, 0);
});

test('a failing solver fails its level (exit 1, the reason in TAP); a level without a solver is skipped', { timeout: 60_000 }, async () => {
  const failed = await check('@state', '--games', broken, '--level', '0');
  assert.equal(failed.code, 1, failed.stdout);
  assert.match(failed.stdout, /^not ok 1 - demo\/level0 \([\d.]+ s\)\n  ---\n  message: "its last line is not the password of level1 \(exit 1\)"\n  stderr: \|\n    the broken solver gives up\n  \.\.\.$/m);
  assert.doesNotMatch(failed.stdout, new RegExp(gw.password('level1')), 'no password in the report');
  const skipped = await check('@state', '--games', broken, '--level', 'level1', '--json');
  assert.equal(skipped.code, 0, skipped.stderr);
  assert.deepEqual((JSON.parse(skipped.stdout) as { levels: unknown[] }).levels, [{ game: 'demo', level: 'level1', index: 1, status: 'skip', seconds: 0, reason: 'no solver' }]);
  const tap = await check('@state', '--games', broken, '--level', '1');
  assert.match(tap.stdout, /^ok 1 - demo\/level1 # SKIP no solver$/m);
  // A solver past its deadline is killed and fails.
  writeFileSync(join(broken, 'solvers/broken.py'), 'import time\ntime.sleep(30)\n');
  const slow = await check('@state', '--games', broken, '--level', '0', '--timeout', '1');
  assert.equal(slow.code, 1);
  assert.match(slow.stdout, /^not ok 1 - demo\/level0 \([\d.]+ s\)\n  ---\n  message: "timed out after 1 s"/m);
});
