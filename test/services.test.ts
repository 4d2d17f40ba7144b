// A game's localhost services against a real gateway: per-connection handlers run in the player's
// own sandbox as their level (two players' copies independent, nothing resident in an idle sandbox),
// TLS terminated by the gateway, a port range, and a daemon shared by every sandbox of the game,
// restarted with backoff after a crash and gone with the gateway. The gateway serves a copy of the
// demo game with a few test services added; sharedGateway proves afterwards that nothing is left.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseYaml } from '../src/config/load-yaml.js';
import { gameSchema } from '../src/config/schema.js';
import { RestartBackoff } from '../src/services/restart-backoff.js';
import { REPO, TestGateway, WARGATE } from './helpers/gateway.js';
import { gameProblems, oneLevelGame } from './helpers/test-games.js';
import { assertNothingLeft, processesIn } from './helpers/leftovers.js';
import { SessionDriver } from './helpers/session-driver.js';
import { sharedGateway } from './helpers/shared-gateway.js';

const WHOAMI_PORT = 30100;
const MINE_PORT = 30200;
const DAEMON_PORT = 30300;

/** A client run inside a sandbox: sends one line to 127.0.0.1:PORT and prints the answer (retrying an empty one with --retry). */
const ASK = `import socket, ssl, sys, time
port, msg = int(sys.argv[1]), sys.argv[2].encode() + b"\\n"
tls, retry = "--tls" in sys.argv, "--retry" in sys.argv
repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 1
deadline, times = time.time() + 20, []
for _ in range(repeat):
    while True:
        out, t0 = b"", time.perf_counter()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if tls:
                ctx = ssl.create_default_context()
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                s = ctx.wrap_socket(s)
            s.sendall(msg)
            if not tls:
                s.shutdown(socket.SHUT_WR)
            while True:
                d = s.recv(4096)
                if not d:
                    break
                out += d
            s.close()
        except (OSError, ssl.SSLError):
            pass
        if out or not retry or time.time() > deadline:
            break
        time.sleep(0.1)
    times.append((time.perf_counter() - t0) * 1000)
sys.stdout.write(out.decode())
if repeat > 1:
    times.sort()
    sys.stderr.write("p50=%.1f p90=%.1f\\n" % (times[len(times) // 2], times[int(len(times) * 0.9)]))
`;

/** The test daemon: answers each connection with its pid and uid; "crash" makes it exit 3. */
const DAEMON = `import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", ${DAEMON_PORT}))
s.listen(16)
while True:
    c, _ = s.accept()
    data = c.recv(100).decode().strip()
    if data == "crash":
        sys.exit(3)
    c.sendall(("daemon pid=%d uid=%d got=%s\\n" % (os.getpid(), os.getuid(), data)).encode())
    c.close()
`;

const TEST_SERVICES = `services:
  - { port: ${WHOAMI_PORT}, level: level3, mode: per-connection, command: 'read line; echo "$(id -un) port=$SERVICE_PORT got=$line"' }
  - { port: ${MINE_PORT}, level: level0, mode: per-connection, command: 'if [ -x /tmp/svc-hook ]; then exec /tmp/svc-hook; fi; cat /tmp/svc-reply 2>/dev/null || echo pristine' }
  - { port: ${DAEMON_PORT}, level: level1, mode: daemon, command: 'exec python3 /opt/test/daemon.py' }
`;
const TEST_FILES = `files:
  - { path: /opt/test/ask.py, source: src/test-ask.py, mode: "0755" }
  - { path: /opt/test/daemon.py, source: src/test-daemon.py, mode: "0755" }
`;

function testGame(extra: (yaml: string) => string = (y) => y): string {
  const dir = mkdtempSync(join(tmpdir(), 'wg-services-'));
  cpSync(join(REPO, 'games/demo'), dir, { recursive: true });
  chmodSync(dir, 0o755); // mkdtemp's 0700 would shut out the build steps' root (an unprivileged id) from /build
  writeFileSync(join(dir, 'src/test-ask.py'), ASK);
  writeFileSync(join(dir, 'src/test-daemon.py'), DAEMON);
  const demo = readFileSync(join(REPO, 'games/demo/game.yaml'), 'utf8');
  assert.match(demo, /^services:\n/m);
  assert.match(demo, /^files:\n/m);
  writeFileSync(join(dir, 'game.yaml'), extra(demo.replace(/^services:\n/m, TEST_SERVICES).replace(/^files:\n/m, TEST_FILES)));
  return dir;
}

const gameDir = testGame();
let gw: TestGateway;
sharedGateway((g) => (gw = g), { config: { games: [gameDir] } });
after(() => rmSync(gameDir, { recursive: true, force: true }));

const ask = (port: number, msg: string, ...flags: string[]) => `python3 /opt/test/ask.py ${port} '${msg}' ${flags.join(' ')}`;

async function pidNamespace(driver: SessionDriver, login: number): Promise<string> {
  const r = await driver.exec(login, 'readlink /proc/self/ns/pid');
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test('game schema: services name a level of the game, ports 1-65535, ranges of at most 64, no port twice', () => {
  const game = oneLevelGame('services');
  const problems = gameProblems;
  const ok = parseYaml(game('  - { port: "31000-31063", level: level0, command: cat, mode: per-connection, tls: true }\n  - { port: 30000, level: level0, command: d, mode: daemon }\n'), 'game.yaml', gameSchema);
  assert.equal(ok.services.length, 2);
  assert.deepEqual(problems(game('  - { port: 30000, level: level9, command: cat, mode: per-connection }\n')), [
    { line: 8, field: 'services.0.level', message: '"level9" is not a level user of this game' },
  ]);
  for (const port of ['0', '65536', '"31010-31000"', '"31000-31064"', '"0-5"', '"65535-65536"', '"abc"', '"22 "']) {
    const found = problems(game(`  - { port: ${port}, level: level0, command: cat, mode: per-connection }\n`));
    assert.deepEqual(found.map((p) => p.field), ['services.0.port'], `port ${port}: ${JSON.stringify(found)}`);
  }
  const twice = problems(game('  - { port: "30000-30005", level: level0, command: cat, mode: per-connection }\n  - { port: 30003, level: level0, command: cat, mode: daemon }\n'));
  assert.deepEqual(twice.map((p) => [p.field, p.message]), [['services.1.port', 'port 30003 is already served by services.0']]);
  assert.deepEqual(problems(game('  - { port: 1, level: level0, command: cat, mode: inetd }\n')).map((p) => p.field), ['services.0.mode']);
  assert.deepEqual(problems(game('  - { port: 1, level: level0, mode: daemon }\n')).map((p) => p.field), ['services.0.command']);
  assert.deepEqual(problems(game('  - { port: 1, level: level0, command: x, mode: daemon, tls: yes, extra: 1 }\n')).map((p) => p.field).sort(), ['services.0.extra', 'services.0.tls']);
  // `levels`: the levels whose sandboxes offer it, each a level of the game, at least one.
  assert.deepEqual(parseYaml(game('  - { port: 1, level: level0, command: x, mode: per-connection, levels: [level0] }\n'), 'game.yaml', gameSchema).services[0].levels, ['level0']);
  assert.deepEqual(problems(game('  - { port: 1, level: level0, command: x, mode: per-connection, levels: [level0, level9] }\n')).map((p) => [p.field, p.message]), [
    ['services.0.levels.1', '"level9" is not a level user of this game'],
  ]);
  assert.deepEqual(problems(game('  - { port: 1, level: level0, command: x, mode: per-connection, levels: [] }\n')).map((p) => p.field), ['services.0.levels']);
});

test('restart backoff: 1 s doubling to 60 s, back to 1 s after a run that stayed up a minute', () => {
  const b = new RestartBackoff();
  assert.deepEqual([0, 10, 10, 10, 10, 10, 10, 10, 10].map((up) => b.next(up)), [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
  assert.equal(b.next(60_000), 1000);
  assert.equal(b.next(5), 2000);
});

test('a per-connection service answers in the player\'s sandbox, as its level; the demo\'s level 7 service gives level 8\'s password', { timeout: 60_000 }, async () => {
  const driver = await SessionDriver.start(gw, [{ user: 'level7', password: gw.password('level7') }]);
  try {
    const who = await driver.exec(0, ask(WHOAMI_PORT, 'hello'));
    assert.equal(who.status, 0, who.stderr);
    assert.equal(who.stdout, `level3 port=${WHOAMI_PORT} got=hello\n`);
    const right = await driver.exec(0, ask(30000, gw.password('level7')));
    assert.equal(right.stdout, `Correct!\n${gw.password('level8')}\n`);
    const wrong = await driver.exec(0, ask(30000, 'guess'));
    assert.match(wrong.stdout, /^Wrong!/);
    assert.doesNotMatch(wrong.stdout, new RegExp(gw.password('level8')));
    // As a player would: the password file, bash's /dev/tcp.
    const bash = await driver.exec(0, 'exec 3<>/dev/tcp/127.0.0.1/30000; cat /etc/demo_pass/level7 >&3; cat <&3');
    assert.equal(bash.stdout, `Correct!\n${gw.password('level8')}\n`, bash.stderr);
    const timing = await driver.exec(0, ask(WHOAMI_PORT, 'x', '--repeat', '20'));
    console.log(`per-connection service, connect -> answer -> close from inside a sandbox: ${timing.stderr.trim()} ms`);
  } finally {
    await driver.quit();
  }
});

test('two players\' copies are independent: one broken (or killed mid-connection) changes nothing for the other', { timeout: 60_000 }, async () => {
  const driver = await SessionDriver.start(gw, [
    { user: 'level0', password: gw.password('level0') },
    { user: 'level0', password: gw.password('level0') },
  ]);
  try {
    assert.equal((await driver.exec(0, 'echo broken > /tmp/svc-reply')).status, 0);
    assert.equal((await driver.exec(0, ask(MINE_PORT, 'x'))).stdout, 'broken\n');
    assert.equal((await driver.exec(1, ask(MINE_PORT, 'x'))).stdout, 'pristine\n');
    // Login 0 kills a handler of its own copy while it serves a connection (held open by its hook).
    const hook = `printf '#!/bin/sh\\necho $$ > /tmp/svc-pid\\nexec sleep 60\\n' > /tmp/svc-hook; chmod 755 /tmp/svc-hook`;
    const kill = await driver.exec(0, `${hook}; (${ask(MINE_PORT, 'x')}; echo served-ended) & for i in $(seq 50); do [ -s /tmp/svc-pid ] && break; sleep 0.1; done; kill -KILL $(cat /tmp/svc-pid) && echo killed; wait`);
    assert.match(kill.stdout, /killed\n(.|\n)*served-ended/, kill.stdout + kill.stderr);
    assert.equal((await driver.exec(1, ask(MINE_PORT, 'x'))).stdout, 'pristine\n', 'the other player\'s copy still answers');
    assert.equal((await driver.exec(1, 'test -e /tmp/svc-hook || test -e /tmp/svc-pid || echo clean')).stdout, 'clean\n');
  } finally {
    await driver.quit();
  }
});

test('an idle sandbox holds no process for its services, only listening sockets in its holder', { timeout: 60_000 }, async () => {
  const driver = await SessionDriver.start(gw, [{ user: 'level0', password: gw.password('level0') }]);
  try {
    const pidns = await pidNamespace(driver, 0);
    // After a connection has been served, its handler is gone too.
    assert.equal((await driver.exec(0, ask(WHOAMI_PORT, 'x'))).status, 0);
    const listening = await driver.exec(0, "awk '$4 == \"0A\"' /proc/net/tcp | wc -l");
    // SSH (IPv4; IPv6 is in tcp6) and the three test services; the demo's own (30000, 30001,
    // 31000-31010) are offered to levels 7, 8 and 9 only (`levels:`), so not in a level0 sandbox.
    const expected = 1 + 3;
    assert.equal(Number(listening.stdout.trim()), expected, 'one listener per port: ' + listening.stdout);
    const closed = await driver.exec(0, 'exec 3<>/dev/tcp/127.0.0.1/30000 && echo open || echo refused');
    assert.equal(closed.stdout.trim(), 'refused', 'a level0 sandbox does not offer level7\'s service');
    let counts: number[] = [];
    for (let i = 0; i < 20; i++) {
      counts.push(processesIn(new Set([pidns]), (_pid, ns) => ns === pidns).length);
      if (counts.length >= 5 && counts.slice(-5).every((c) => c === 1)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    counts = counts.slice(-5);
    assert.deepEqual(counts, Array(5).fill(1), `processes in the sandbox's pid namespace: ${counts}`);
    const holder = gw.events('sandbox.start').find((e) => readlinkOr(`/proc/${e.nsPid as number}/ns/pid`) === pidns)!;
    const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${holder.holderPid as number}/status`, 'utf8'))?.[1];
    console.log(`idle sandbox with services: ${counts[0]} process (its PID 1), ${listening.stdout.trim()} listening sockets in its holder (holder RSS ${rss} kB)`);
  } finally {
    await driver.quit();
  }
});

function readlinkOr(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

test('TLS: the gateway terminates TLS; openssl s_client and python3 ssl get level 9\'s password from the level 8 service', { timeout: 60_000 }, async () => {
  const driver = await SessionDriver.start(gw, [{ user: 'level8', password: gw.password('level8') }]);
  try {
    const py = await driver.exec(0, ask(30001, gw.password('level8'), '--tls'));
    assert.equal(py.stdout, `Correct!\n${gw.password('level9')}\n`, py.stderr);
    const plain = await driver.exec(0, ask(30001, gw.password('level8')));
    assert.doesNotMatch(plain.stdout, /Correct/, 'plaintext gets nowhere');
    if (existsSync('/usr/bin/openssl')) {
      const s = await driver.exec(0, 'cat /etc/demo_pass/level8 | openssl s_client -connect 127.0.0.1:30001 -quiet 2>/dev/null');
      assert.equal(s.stdout, `Correct!\n${gw.password('level9')}\n`, s.stderr);
      const cert = await driver.exec(0, 'openssl s_client -connect 127.0.0.1:30001 </dev/null 2>/dev/null | openssl x509 -noout -subject');
      assert.match(cert.stdout, /CN\s*=\s*localhost/);
    }
    assert.ok(existsSync(join(gw.stateDir, 'games/demo/service-tls.json')), 'the certificate is kept in the state dir');
  } finally {
    await driver.quit();
  }
});

test('a port range: every port listens, exactly one gives level 10\'s password, the others echo', { timeout: 60_000 }, async () => {
  const driver = await SessionDriver.start(gw, [{ user: 'level9', password: gw.password('level9') }]);
  try {
    const pw = gw.password('level9');
    const scan = await driver.exec(0, `for p in $(seq 31000 31010); do printf '%s: ' $p; ${ask(0, pw).replace(' 0 ', ' $p ')} | head -c 200 | tr '\\n' ' '; echo; done`);
    const lines = scan.stdout.trim().split('\n');
    assert.equal(lines.length, 11, scan.stdout + scan.stderr);
    const answering = lines.filter((l) => l.includes('Correct!'));
    assert.deepEqual(answering, [`31007: Correct! ${gw.password('level10')} `]);
    for (const l of lines.filter((l) => !l.startsWith('31007'))) assert.match(l, new RegExp(`^310\\d\\d: ${pw} ?$`));
    const closed = await driver.exec(0, ask(31011, 'x'));
    assert.equal(closed.stdout, '', 'no port beyond the range');
  } finally {
    await driver.quit();
  }
});

test('a daemon: one process for the game, reached from two sandboxes, restarted with backoff after crashes', { timeout: 90_000 }, async () => {
  const driver = await SessionDriver.start(gw, [
    { user: 'level0', password: gw.password('level0') },
    { user: 'level2', password: gw.password('level2') },
  ]);
  try {
    await gw.waitFor((e) => e.event === 'service.started' && e.port === DAEMON_PORT, 20_000);
    const a = await driver.exec(0, ask(DAEMON_PORT, 'from-a', '--retry'));
    const b = await driver.exec(1, ask(DAEMON_PORT, 'from-b', '--retry'));
    const pid = /pid=(\d+)/.exec(a.stdout)?.[1];
    assert.match(a.stdout, /^daemon pid=\d+ uid=12001 got=from-a\n$/, a.stderr);
    assert.equal(b.stdout, `daemon pid=${pid} uid=12001 got=from-b\n`, 'the same process answers both sandboxes');
    const daemonSandbox = gw.events('service.started').find((e) => e.port === DAEMON_PORT)!.sandbox;
    assert.ok(!gw.events('session.start').some((e) => e.session === daemonSandbox), 'the daemon runs in a sandbox of its own');

    // Two crashes in a row: restarts after 1 s, then 2 s.
    for (const [run, wait] of [[1, 1000], [2, 2000]] as const) {
      await gw.waitFor((e) => e.event === 'service.started' && e.port === DAEMON_PORT && e.run === run, 20_000);
      await driver.exec(0, ask(DAEMON_PORT, 'ping', '--retry'));
      const crashed = gw.waitFor((e) => e.event === 'service.crashed' && e.port === DAEMON_PORT && e.run === run, 20_000);
      await driver.exec(0, ask(DAEMON_PORT, 'crash'));
      assert.equal((await crashed).status, 'exit 3');
      const restart = await gw.waitFor((e) => e.event === 'service.restart' && e.port === DAEMON_PORT && e.inMs === wait, 5_000);
      assert.ok(restart);
    }
    await gw.waitFor((e) => e.event === 'service.started' && e.port === DAEMON_PORT && e.run === 3, 20_000);
    const again = await driver.exec(1, ask(DAEMON_PORT, 'back', '--retry'));
    assert.match(again.stdout, /^daemon pid=\d+ uid=12001 got=back\n$/);
  } finally {
    await driver.quit();
  }
});

test('a daemon and its sandbox are gone after the gateway stops; a service on the gateway\'s SSH port stops the start', { timeout: 90_000 }, async () => {
  const own = await TestGateway.start({ config: { games: [gameDir] } });
  try {
    const started = await own.waitFor((e) => e.event === 'service.started' && e.port === DAEMON_PORT, 20_000);
    const box = own.daemonLogs.find((e) => e.event === 'sandbox.start' && e.sandbox === started.sandbox)!;
    assert.ok(existsSync(`/proc/${box.nsPid as number}`));
    await own.stop();
    assert.ok(own.events('service.stopped').some((e) => e.port === DAEMON_PORT));
    assert.ok(!existsSync(`/proc/${box.nsPid as number}`), 'the daemon sandbox\'s PID 1 is gone');
    await assertNothingLeft(own);
  } finally {
    await own.stop();
    own.cleanup();
  }

  const port = 30000 + Math.floor(Math.random() * 5000) + 20000;
  const clash = testGame((y) => y.replace(/^services:\n/m, `services:\n  - { port: ${port}, level: level0, mode: per-connection, command: cat }\n`));
  const stateDir = mkdtempSync(join(tmpdir(), 'wg-services-clash-'));
  try {
    const config = join(stateDir, 'config.yaml');
    writeFileSync(config, `listen: { host: 127.0.0.1, port: ${port} }\nstateDir: ${stateDir}\ngames: [${clash}]\n`);
    const r = spawnSync(WARGATE, ['serve', '--config', config], { encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, new RegExp(`WG_ERR_CONFIG_INVALID.*services\\.0: port ${port} is the gateway's SSH port`), r.stderr);
  } finally {
    rmSync(clash, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  }
});
