// `wargate games`, `wargate build` and `wargate reload`: listing and build state, layers built once
// per set of inputs with progress lines, clear errors for a broken game.yaml, and a running gateway
// that takes a rebuilt game for new logins while an open session keeps its own layer and services.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO, TestGateway, WARGATE } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';
import { ssh2Exec, ssh2Login, ssh2Logout, ssh2Shell } from './helpers/real-clients.js';
import type ssh2 from 'ssh2';

const run = (...args: string[]) => spawnSync(WARGATE, args, { encoding: 'utf8', timeout: 120_000 });
const DEMO = join(REPO, 'games/demo');

const HANDLER_PORT = 30400;
const DAEMON_PORT = 30401;
/** A daemon that answers each connection with the first word of the readme in its layer, and its pid. */
const DAEMON = `import os, socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", ${DAEMON_PORT}))
s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(("%s pid=%d\\n" % (open("/home/level0/readme").read().split()[0], os.getpid())).encode())
    c.close()
`;
const SERVICES = `services:
  - { port: ${HANDLER_PORT}, level: level0, mode: per-connection, command: 'echo handler-v1' }
  - { port: ${DAEMON_PORT}, level: level0, mode: daemon, command: 'exec python3 /opt/test/daemon.py' }
`;

/** What 127.0.0.1:PORT answers inside a session's sandbox (asked again while a new daemon starts). */
async function answer(client: ssh2.Client, port: number): Promise<string> {
  const r = await ssh2Exec(client, `for i in $(seq 50); do r=$(cat </dev/tcp/127.0.0.1/${port} 2>/dev/null); [ -n "$r" ] && break; sleep 0.2; done; echo "$r"`);
  return r.stdout.trim();
}

test('games lists levels and build state; build builds once, with progress, then says up to date', { timeout: 120_000 }, () => {
  const state = mkdtempSync(join(tmpdir(), 'wargate-games-'));
  try {
    const before = run('games', '--state-dir', state);
    assert.equal(before.status, 0, before.stderr);
    assert.match(before.stdout, /^demo  .*games\/demo\n  not built/);
    assert.match(before.stdout, /level4 +uid 12004 +shell \/bin\/bash +key login: yes/);
    assert.match(before.stdout, /level5 +uid 12005 +shell \/opt\/demo\/bin\/uppercase-shell +key login: no/);

    let started = performance.now();
    const first = run('build', 'demo', '--state-dir', state);
    const firstMs = performance.now() - started;
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /^demo: building\n/);
    assert.match(first.stdout, /^demo: compiling src\/run-as\.c -> \/home\/level2\/run-as-level3$/m, 'a line per compile');
    assert.match(first.stdout, /^demo: repository \/srv\/git\/demo\.git$/m, 'a line per repository');
    const layer = /^demo: built (\S+) in [\d.]+ s$/m.exec(first.stdout)?.[1];
    assert.ok(layer, first.stdout);

    const listed = JSON.parse(run('games', '--state-dir', state, '--json').stdout) as { name: string; layer: string; built: boolean; levels: { user: string; keyLogin: boolean }[] }[];
    assert.equal(listed[0].name, 'demo');
    assert.equal(listed[0].layer, layer);
    assert.equal(listed[0].built, true);
    assert.deepEqual(listed[0].levels.filter((l) => l.keyLogin).map((l) => l.user), ['level4']);
    const passwords = readFileSync(join(state, 'games/demo/passwords.json'), 'utf8');

    const inode = statSync(layer).ino;
    const layers = readdirSync(join(state, 'layers')).sort();
    started = performance.now();
    const second = run('build', '--state-dir', state, '--games', DEMO);
    const secondMs = performance.now() - started;
    assert.equal(second.status, 0, second.stderr);
    assert.equal(second.stdout, `demo: up to date (${layer})\n`);
    assert.equal(statSync(layer).ino, inode, 'the layer directory was not rebuilt');
    assert.deepEqual(readdirSync(join(state, 'layers')).sort(), layers, 'no other layer appeared');
    assert.equal(readFileSync(join(state, 'games/demo/passwords.json'), 'utf8'), passwords, 'the generated passwords are kept');
    console.log(`build: first ${Math.round(firstMs)} ms, up to date ${Math.round(secondMs)} ms`);
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

test('a broken game.yaml: build and games fail with file, line and field, no stack trace, nothing built', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wargate-games-'));
  try {
    writeFileSync(join(dir, 'game.yaml'), 'name: broken\nhostname: h\nlevels:\n  - user: level0\n    uid: 12000\n    shell: bash\n');
    for (const args of [['build'], ['games']]) {
      const r = run(...args, '--state-dir', join(dir, 'state'), '--games', dir);
      assert.equal(r.status, 2, args[0]);
      assert.match(r.stderr, new RegExp(`^wargate: WG_ERR_CONFIG_INVALID: ${join(dir, 'game.yaml')}:6:\\d+: levels\\.0\\.shell: expected an absolute path`));
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    }
    const unknown = run('build', 'nosuchgame', '--state-dir', join(dir, 'state'));
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /no game nosuchgame/);
    assert.deepEqual(readdirSync(dir), ['game.yaml'], 'no state was created');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('build + reload: a new login gets the changed game and services, an open session keeps its layer and handler; a bad reload changes nothing', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wargate-reload-'));
  const game = join(dir, 'demo');
  cpSync(DEMO, game, { recursive: true });
  writeFileSync(join(game, 'src/test-daemon.py'), DAEMON);
  const demo = readFileSync(join(game, 'game.yaml'), 'utf8');
  const yaml = demo.replace(/^services:\n/m, SERVICES).replace(/^files:\n/m, 'files:\n  - { path: /opt/test/daemon.py, source: src/test-daemon.py, mode: "0755" }\n');
  assert.notEqual(yaml, demo);
  writeFileSync(join(game, 'game.yaml'), yaml);
  const gw = await TestGateway.start({ config: { games: [game] } });
  const config = join(gw.stateDir, 'test-config.yaml');
  const opened = [];
  try {
    const old = await ssh2Login(gw, 'level0');
    opened.push(old);
    assert.match((await ssh2Exec(old, 'cat readme')).stdout, /^Well done\. The password for level1 is:/);
    assert.equal(await answer(old, HANDLER_PORT), 'handler-v1');
    const firstDaemon = await answer(old, DAEMON_PORT);
    assert.match(firstDaemon, /^Well pid=\d+$/);

    const changed = yaml
      .replace('Level 0 -> 1: the password for level1 is in a file called readme', 'Level 0 -> 1 (rebuilt): the password for level1 is in a file called readme')
      .replace('Well done. The password for level1 is:', 'Rebuilt. The password for level1 is:')
      .replace("command: 'echo handler-v1'", "command: 'echo handler-v2'");
    assert.notEqual(changed, yaml);
    writeFileSync(join(game, 'game.yaml'), changed);
    const build = run('build', '--config', config);
    assert.equal(build.status, 0, build.stderr);
    assert.match(build.stdout, /^demo: built /m);
    let started = performance.now();
    const reload = run('reload', '--config', config);
    const reloadMs = performance.now() - started;
    assert.equal(reload.status, 0, reload.stderr);
    const layer = /^reloaded demo: \d+ levels, layer (\S+)$/m.exec(reload.stdout)?.[1];
    assert.ok(layer && build.stdout.includes(layer), reload.stdout);
    await gw.waitFor((e) => e.event === 'game.reloaded' && e.layer === layer);

    const fresh = await ssh2Login(gw, 'level0');
    opened.push(fresh);
    const shell = await ssh2Shell(fresh, { term: 'xterm', rows: 24, cols: 80 }, '$ ', 'exit\n');
    assert.match(shell.stdout, /Level 0 -> 1 \(rebuilt\)/, 'a new login shows the new goal');
    assert.match((await ssh2Exec(fresh, 'cat readme')).stdout, /^Rebuilt\./, 'and has the new layer');
    assert.match((await ssh2Exec(old, 'cat readme')).stdout, /^Well done\./, 'the open session still reads its old layer');

    // Services: a new sandbox gets the new handler, the open one keeps the handler it was offered.
    assert.equal(await answer(fresh, HANDLER_PORT), 'handler-v2');
    assert.equal(await answer(old, HANDLER_PORT), 'handler-v1');
    // The daemon's layer changed: a new daemon in the new layer answers both sandboxes; the old one
    // was stopped only once the new one had started.
    const secondDaemon = await answer(fresh, DAEMON_PORT);
    assert.match(secondDaemon, /^Rebuilt\. pid=\d+$/);
    assert.equal(await answer(old, DAEMON_PORT), secondDaemon, 'the open sandbox reaches the new daemon');
    const daemonLog = gw.logs.filter((e) => e.port === DAEMON_PORT && (e.event === 'service.started' || e.event === 'service.stopped')).map((e) => e.event);
    assert.deepEqual(daemonLog, ['service.started', 'service.started', 'service.stopped']);

    // A reload of a broken game.yaml is refused with the reason; the rebuilt game is still served.
    writeFileSync(join(game, 'game.yaml'), changed.replace('uid: 12000', 'uid: twelve'));
    started = performance.now();
    const bad = run('reload', '--config', config);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, new RegExp(`reload failed, still serving the games loaded before: WG_ERR_CONFIG_INVALID: ${join(game, 'game.yaml')}:\\d+:\\d+: levels\\.0\\.uid`));
    await gw.waitFor((e) => e.event === 'games.reload_failed');
    const after = await ssh2Login(gw, 'level0');
    opened.push(after);
    assert.match((await ssh2Exec(after, 'cat readme')).stdout, /^Rebuilt\./);
    // SIGHUP reloads too (the file is fixed again: the rebuilt layer, already built, is taken).
    writeFileSync(join(game, 'game.yaml'), changed);
    const reloads = gw.events('game.reloaded').length;
    gw.proc.kill('SIGHUP');
    await gw.waitFor((e) => e.event === 'game.reloaded' && gw.events('game.reloaded').length > reloads);
    // Nothing of the daemon's run changed this time: the same process still answers, never restarted.
    assert.equal(await answer(after, DAEMON_PORT), secondDaemon, 'an unchanged daemon keeps running');
    assert.equal(gw.logs.filter((e) => e.port === DAEMON_PORT && e.event === 'service.started').length, 2);
    console.log(`reload answered in ${Math.round(reloadMs)} ms; bad reload refused in ${Math.round(performance.now() - started)} ms`);
    for (const c of opened.splice(0)) await ssh2Logout(c);
  } finally {
    for (const c of opened) c.end();
    await gw.stop();
    await assertNothingLeft(gw);
    gw.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
