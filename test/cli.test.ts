// The CLI answers --help on every command and refuses bad input with a clear message, starting nothing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WARGATE } from './helpers/gateway.js';

const run = (...args: string[]) => spawnSync(WARGATE, [...args], { encoding: 'utf8', timeout: 30_000 });

test('--help works on the program and on every command', () => {
  for (const args of [['--help'], ['demo', '--help'], ['serve', '--help']]) {
    const r = run(...args);
    assert.equal(r.status, 0, args.join(' '));
    assert.match(r.stdout, /Usage: wargate/);
  }
  assert.match(run('--help').stdout, /demo[\s\S]*serve/);
  assert.match(run('demo', '--help').stdout, /--port[\s\S]*--state-dir/);
});

test('a bad option value is refused before anything starts', () => {
  const r = run('demo', '--port', '70000');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /expected a port number/);
});

test('a bad game file names file, line and field, and nothing is created', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wargate-cli-'));
  try {
    mkdirSync(join(dir, 'game'));
    writeFileSync(join(dir, 'game/game.yaml'), 'name: broken\nhostname: h\nlevels:\n  - user: level0\n    uid: 12000\n    shell: bash\n');
    const state = join(dir, 'state');
    writeFileSync(join(dir, 'config.yaml'), `listen: { port: 0 }\nstateDir: ${state}\ngames: [game]\n`);
    const r = run('serve', '--config', join(dir, 'config.yaml'));
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`WG_ERR_CONFIG_INVALID: ${join(dir, 'game/game.yaml')}:6:\\d+: levels\\.0\\.shell: expected an absolute path`));
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    assert.ok(!existsSync(join(state, 'sandboxes')), 'nothing was started');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

