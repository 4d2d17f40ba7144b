// Build steps (game.yaml `build:`) with the real CLI and a real gateway: a step compiles a setuid
// program with gcc and sets its owner and mode, another deletes files placed earlier and one of the
// base (a whiteout); the layer serves a login where the program elevates. A failing step and one
// over its time limit fail the build, naming the step and quoting its output, and leave no layer,
// mount or process. The build sandbox has no network, a read-only /build and /usr, its own root.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { ssh } from './helpers/clients.js';
import { TestGateway } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';
import { assertBuildLeftNothing, build, builtLayer, printedNamespaces, writeGame } from './helpers/test-games.js';
import { SANDBOX_ROOT_ID } from '../src/sandbox/ids.js';

const BECOME = `#include <stdio.h>
#include <unistd.h>
int main(void) {
    printf("euid %d\\n", (int)geteuid());
    fflush(stdout);
    execl("/bin/cat", "cat", "/etc/steps-secret", (char *)0);
    return 127;
}
`;

const STEPS_GAME = `name: steps
hostname: steps-host
levels:
  - user: level0
    uid: 12100
    password: level0
    home:
      - { path: placed, content: "placed by home\\n" }
  - user: level1
    uid: 12101
    password: pw-level1
files:
  - { path: /opt/steps/remove-me, content: "placed by files\\n" }
build:
  - run: |
      echo "compiling as $(id -u) on $(hostname)"
      gcc -O2 -Wall -o /home/level0/become-level1 /build/src/become.c
      chown level1:level0 /home/level0/become-level1
      chmod 4750 /home/level0/become-level1
      echo '{{password:level1}}' > /etc/steps-secret
      chown level1:level1 /etc/steps-secret
      chmod 0400 /etc/steps-secret
  - run: rm /home/level0/placed /opt/steps/remove-me /etc/shells && echo removed
    timeout: 30
`;

test('build steps: a setuid program compiled with gcc elevates at a real login; deletions stay deleted; unchanged inputs are not rebuilt', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wg-build-steps-'));
  const state = join(dir, 'state');
  const game = writeGame(join(dir, 'game'), STEPS_GAME, { 'src/become.c': BECOME, 'notes.txt': 'not used by any step\n' });
  let gw: TestGateway | undefined;
  try {
    const first = build(state, game);
    const layer = builtLayer(first);
    const lines = first.stdout.split('\n');
    const at = (line: string) => lines.indexOf(line);
    assert.ok(at('steps: build.0: echo "compiling as $(id -u) on $(hostname)"') > 0, first.stdout);
    assert.ok(at('steps: build.0 | compiling as 0 on steps-host') > at('steps: build.0: echo "compiling as $(id -u) on $(hostname)"'), 'each output line streamed as progress');
    assert.ok(at('steps: build.1 | removed') > at('steps: build.1: rm /home/level0/placed /opt/steps/remove-me /etc/shells && echo removed'), first.stdout);
    assert.doesNotMatch(first.stdout, /pw-level1/, 'a step text is shown unfilled');
    assertBuildLeftNothing(state);

    const again = build(state, game);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout, `steps: up to date (${layer})\n`, 'no input changed: no step ran');

    gw = await TestGateway.start({ stateDir: state, config: { games: [game] } });
    const r = await ssh(gw, 'level0', ['--', 'stat -c "%U %G %a" become-level1; ./become-level1; ls; for f in /opt/steps/remove-me /etc/shells; do test -e $f || echo "no $f"; done'], '', 'level0');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'level1 level0 4750\neuid 12101\npw-level1\nbecome-level1\nno /opt/steps/remove-me\nno /etc/shells\n');
    const secret = await ssh(gw, 'level0', ['--', 'cat /etc/steps-secret'], '', 'level0');
    assert.notEqual(secret.code, 0, 'the secret stays the level1 user\'s');
    await gw.stop();
    await assertNothingLeft(gw);
    gw.cleanup();
    gw = undefined;

    // A file of the game folder is an input too: the steps may read any of it at /build.
    writeFileSync(join(game, 'notes.txt'), 'changed\n');
    const rebuilt = builtLayer(build(state, game));
    assert.notEqual(rebuilt, layer);
    assert.deepEqual(readdirSync(join(state, 'layers')).filter((n) => n.startsWith('game-')).sort(), [basename(layer), basename(rebuilt)].sort());
  } finally {
    if (gw) {
      await gw.stop();
      gw.cleanup();
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failing build step fails the build with its index and last output lines; no layer, mount or process is left', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wg-build-steps-'));
  const state = join(dir, 'state');
  const game = writeGame(join(dir, 'game'), `name: failing
hostname: failing
levels:
  - { user: level0, uid: 12100, password: level0 }
build:
  - run: echo first step ok
  - run: |
      sleep 1000 &
      readlink /proc/self/ns/pid /proc/self/ns/mnt
      for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "output line $i"; done
      exit 3
  - run: echo never runs
`);
  try {
    const r = build(state, game);
    assert.equal(r.status, 2, r.stdout);
    assert.match(r.stderr, /^wargate: WG_ERR_LAYER_BUILD: build\.1 \(sleep 1000 &\) failed: it exited with status 3; its last output:\n {2}\| output line 3\n/);
    assert.match(r.stderr, /\| output line 12\n$/);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    assert.doesNotMatch(r.stdout, /never runs \|/);
    assert.deepEqual(readdirSync(join(state, 'layers')).filter((n) => n.startsWith('game-')), [], 'no layer');
    const namespaces = printedNamespaces(r.stdout);
    assert.equal(namespaces.length, 2, r.stdout);
    assertBuildLeftNothing(state, namespaces);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a build step over its time limit is killed with everything it started', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wg-build-steps-'));
  const state = join(dir, 'state');
  const game = writeGame(join(dir, 'game'), `name: slow
hostname: slow
levels:
  - { user: level0, uid: 12100, password: level0 }
build:
  - run: |
      readlink /proc/self/ns/pid /proc/self/ns/mnt
      (trap "" TERM HUP INT; setsid sleep 1000) &
      sleep 1000
    timeout: 2
`);
  try {
    const started = performance.now();
    const r = build(state, game);
    const ms = performance.now() - started;
    assert.equal(r.status, 2, r.stdout);
    assert.match(r.stderr, /^wargate: WG_ERR_LAYER_BUILD: build\.0 \(readlink \/proc\/self\/ns\/pid \/proc\/self\/ns\/mnt\) failed: it ran longer than 2 s and was killed; its last output:\n/);
    assertBuildLeftNothing(state, printedNamespaces(r.stdout));
    console.log(`a 2 s step limit ended the build after ${Math.round(ms)} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the build sandbox: loopback only, the game folder and the host /usr read-only, root is the sandbox root, no /build in the layer', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wg-build-steps-'));
  const state = join(dir, 'state');
  const game = writeGame(join(dir, 'game'), `name: inside
hostname: inside
levels:
  - { user: level0, uid: 12100, password: level0 }
build:
  - run: |
      echo "interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')"
      echo "uid_map: $(tr -s ' ' < /proc/self/uid_map | tr '\\n' ';')"
      echo "pid: $$, ppid: $PPID"
      if touch /build/x 2>/dev/null; then echo build writable; else echo build read-only; fi
      if touch /usr/x 2>/dev/null; then echo usr writable; else echo usr read-only; fi
      cat /build/marker
      echo "env: $(env | grep -c '^WG_') WG_ variables"
`, { marker: 'the game folder\n' });
  try {
    const r = build(state, game);
    const layer = builtLayer(r);
    const out = r.stdout.split('\n').filter((l) => l.startsWith('inside: build.0 | ')).map((l) => l.slice('inside: build.0 | '.length));
    assert.deepEqual(out, [
      'interfaces: lo ',
      `uid_map:  0 ${SANDBOX_ROOT_ID} 1; 1 1 65535;`,
      'pid: 2, ppid: 1',
      'build read-only',
      'usr read-only',
      'the game folder',
      'env: 0 WG_ variables',
    ]);
    assert.ok(!readdirSync(layer).includes('build'), 'the /build mount point is not part of the layer');
    assertBuildLeftNothing(state);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
