// Public challenge ports (src/challenges/) against a real gateway: each per-connection port gives
// every TCP connection a sandbox of its own with the handler as the level user and the connection as
// its stdin and stdout; wall-time, CPU, memory and process limits; caps on connections in all and
// per address with a one-line refusal; a shell won through the handler is inside that sandbox only;
// a daemon port relays to one supervised program whose network is its loopback alone; connections
// appear in `wargate sessions` and `wargate kill` ends them; a flood leaves SSH logins unhurt; a
// gateway killed with live connections leaves nothing a restart does not remove.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseYaml } from '../src/config/load-yaml.js';
import { gameSchema } from '../src/config/schema.js';
import { TestGateway, WARGATE } from './helpers/gateway.js';
import { ssh } from './helpers/clients.js';
import { assertNothingLeft, gatewaySandboxProcesses } from './helpers/leftovers.js';
import { sharedGateway } from './helpers/shared-gateway.js';
import { gameProblems, oneLevelGame, writeGame } from './helpers/test-games.js';

/** Its loopback, for a host service the sandboxes must not reach. */
const host = createServer((s) => {
  hostConnections++;
  s.destroy();
});
let hostConnections = 0;
await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
const hostPort = (host.address() as { port: number }).port;
after(() => host.close());

const P = {
  echo: 7001,
  stderr: 7002,
  wall: 7003,
  cpu: 7004,
  memory: 7005,
  pids: 7006,
  caps: 7007,
  shell: 7008,
  daemon: 7009,
  flood: 7010,
};

const DAEMON = `import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["CHALLENGE_PORT"])))
s.listen(16)
served = 0
while True:
    c, _ = s.accept()
    line = c.makefile().readline().strip()
    if line == "crash":
        sys.exit(3)
    served += 1
    c.sendall(("daemon pid=%d user=%d served=%d links=%s\\n" % (os.getpid(), os.getuid(), served, [n for _, n in socket.if_nameindex()])).encode())
    c.close()
`;

/** Forks children that sleep until it cannot, and says how many it made. */
const FORKS = `import os, time
made = 0
try:
    while made < 50:
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        made += 1
    print("forked", made)
except OSError as e:
    print("forked", made, "then", e.strerror)
`;

const gameDir = writeGame(
  mkdtempSync(join(tmpdir(), 'wargate-challenges-')),
  `name: chal
hostname: chalbox
levels:
  - { user: player0, uid: 13000, password: player0 }
  - { user: player1, uid: 13001, password: player1 }
files:
  - { path: /opt/chal/daemon.py, source: daemon.py, mode: "0755" }
  - { path: /opt/chal/forks.py, source: forks.py, mode: "0755" }
challenges:
  - { port: ${P.echo}, mode: per-connection, level: player1, command: 'echo "hello from $(hostname) as $(id -un) port=$CHALLENGE_PORT pid=$$ files=$(ls /tmp | wc -l)"; touch /tmp/mark; read line; echo "got $line"' }
  - { port: ${P.stderr}, mode: per-connection, level: player1, stderr: connection, command: 'echo out; echo err >&2' }
  - { port: ${P.wall}, mode: per-connection, level: player1, limits: { wallSeconds: 2 }, command: 'echo started; exec sleep 60' }
  - { port: ${P.cpu}, mode: per-connection, level: player1, limits: { cpuSeconds: 1 }, command: 'sh -c "while :; do :; done"; echo "spinner status $?"' }
  - { port: ${P.memory}, mode: per-connection, level: player1, limits: { memory: 32m }, command: 'python3 -c "b = bytearray(200 << 20)"; echo "bomb status $?"' }
  - { port: ${P.pids}, mode: per-connection, level: player1, limits: { pids: 8 }, command: 'exec python3 /opt/chal/forks.py' }
  - { port: ${P.caps}, mode: per-connection, level: player1, maxConnections: 3, maxPerAddress: 2, command: 'echo in; exec sleep 60' }
  - { port: ${P.shell}, mode: per-connection, level: player1, command: 'exec /bin/sh 2>&1' }
  - { port: ${P.daemon}, mode: daemon, level: player1, command: 'exec python3 /opt/chal/daemon.py' }
  - { port: ${P.flood}, mode: per-connection, level: player1, maxConnections: 20, maxPerAddress: 20, command: 'exec sleep 30' }
`,
  { 'daemon.py': DAEMON, 'forks.py': FORKS },
);
after(() => rmSync(gameDir, { recursive: true, force: true }));

let gw: TestGateway;
sharedGateway((g) => (gw = g), { config: { games: [gameDir] } });

test('game schema: a challenge names a level of the game, a port, a mode and known limits; no port twice', () => {
  const game = oneLevelGame('challenges');
  const fields = (text: string) => gameProblems(text).map((p) => `${p.line} ${p.field}: ${p.message}`);
  const ok = parseYaml(game('  - { port: 5842, mode: per-connection, level: level0, command: cat }\n'), 'game.yaml', gameSchema);
  assert.deepEqual(ok.challenges[0].limits, { wallSeconds: 300, cpuSeconds: 10, memory: '64m', pids: 16, cpuWeight: 100, writableSize: '16m', writableInodes: 4096 });
  assert.equal(ok.challenges[0].stderr, 'discard');
  assert.deepEqual(fields(game('  - { port: 5842, mode: per-connection, level: level9, command: cat }\n')), ['8 challenges.0.level: "level9" is not a level user of this game']);
  assert.deepEqual(fields(game('  - { port: 5842, mode: inetd, level: level0, command: cat }\n')).map((f) => f.split(':')[0]), ['8 challenges.0.mode']);
  assert.deepEqual(fields(game('  - { port: 70000, mode: daemon, level: level0, command: cat }\n')), ['8 challenges.0.port: expected a port from 1 to 65535']);
  assert.deepEqual(fields(game('  - { port: 5842, mode: daemon, level: level0, command: cat, limits: { wallSeconds: 0, disk: 1 } }\n')).map((f) => f.split(':')[0]).sort(), ['8 challenges.0.limits.disk', '8 challenges.0.limits.wallSeconds']);
  assert.deepEqual(fields(game('  - { port: 5842, mode: daemon, level: level0, command: cat }\n  - { port: 5842, mode: per-connection, level: level0, command: cat }\n')), ['9 challenges.1.port: port 5842 is already served by challenges.0']);
});

test('a challenge port that cannot be opened stops the start with an error naming it, and nothing is left', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  const stateDir = mkdtempSync(join(tmpdir(), 'wargate-challenge-clash-'));
  try {
    const config = join(stateDir, 'config.yaml');
    writeFileSync(config, `listen: { host: 127.0.0.1, port: 0 }\nstateDir: ${stateDir}\ngames: [${gameDir}]\nchallenges: { host: 127.0.0.1, portOffset: ${port - P.echo} }\n`);
    const r = spawnSync(WARGATE, ['serve', '--config', config], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`^wargate: WG_ERR_CONFIG_INVALID: game chal: challenges.0.port: cannot listen on 127.0.0.1:${port}: EADDRINUSE\n$`));
    assert.deepEqual(readdirSync(join(stateDir, 'sandboxes')), [], 'the daemon started before the failure was stopped');
  } finally {
    taken.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});

interface Reply {
  text: string;
  /** ms from connect to the server's close. */
  ms: number;
}

/** Connects to a challenge port (from `from`), sends `input` (then shuts down its side unless keepOpen), reads to the end. */
function talk(port: number, input = '', { from, keepOpen = false, timeoutMs = 20_000 }: { from?: string; keepOpen?: boolean; timeoutMs?: number } = {}): Promise<Reply> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: port + gw.challengePortOffset, localAddress: from });
    let text = '';
    const timer = setTimeout(() => (socket.destroy(), reject(new Error(`no end within ${timeoutMs} ms; got ${JSON.stringify(text)}`))), timeoutMs);
    socket.setEncoding('utf8').on('data', (d: string) => (text += d));
    socket.on('error', reject);
    socket.on('connect', () => (keepOpen ? socket.write(input) : socket.end(input)));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, ms: performance.now() - started });
    });
  });
}

/** An open connection that has received `until`. */
function hold(port: number, until: RegExp, from?: string): Promise<Socket & { received: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: port + gw.challengePortOffset, localAddress: from }) as Socket & { received: string };
    socket.received = '';
    socket.setEncoding('utf8').on('data', (d: string) => {
      socket.received += d;
      if (until.test(socket.received)) resolve(socket);
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed before ${until}: ${JSON.stringify(socket.received)}`)));
  });
}

const closed = (socket: Socket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
const ends = (reason: string) => gw.events('challenge.end').filter((e) => e.reason === reason).length;

test('each connection gets a fresh sandbox: the handler as the level user, the connection as its stdin and stdout', async () => {
  const first = await talk(P.echo, 'one\n');
  const second = await talk(P.echo, 'two\n');
  assert.match(first.text, /^hello from chalbox as player1 port=7001 pid=\d+ files=0\ngot one\n$/);
  assert.match(second.text, /files=0\ngot two\n$/, "the first connection's /tmp/mark is not in the second's sandbox");
  const starts = gw.events('challenge.start');
  assert.equal(new Set(starts.map((e) => e.sandbox)).size, starts.length, 'a sandbox per connection');
  await gw.waitFor((e) => e.event === 'challenge.end' && e.reason === 'handler-exited' && e.challenge === starts.at(-1)!.challenge);
});

test("stderr goes to the player only where the port says so", async () => {
  assert.equal((await talk(P.stderr)).text.split('\n').sort().join(' ').trim(), 'err out');
  assert.match((await talk(P.echo, 'x\n')).text, /^hello/);
});

test('the wall-clock limit ends the connection and its sandbox, with a word to the player', async () => {
  const r = await talk(P.wall, '', { keepOpen: true });
  assert.match(r.text, /^started\n\nwargate: connection ended by its time limit \(2 s\)\n$/);
  assert.ok(r.ms >= 1900 && r.ms < 6000, `ended after ${r.ms} ms`);
  const end = await gw.waitFor((e) => e.event === 'challenge.end' && e.reason === 'wall-time');
  assert.ok((end.cleanupMs as number) < 1000, `sandbox gone ${end.cleanupMs} ms after`);
});

test('CPU seconds: a spinning process gets SIGXCPU at its limit; memory: a bomb is OOM-killed; processes: forks stop at the cap', async () => {
  const cpu = await talk(P.cpu);
  assert.match(cpu.text, /^spinner status 152\n$/, 'killed by SIGXCPU (128 + 24)');
  assert.ok(cpu.ms < 8000, `${cpu.ms} ms`);
  const memory = await talk(P.memory);
  assert.match(memory.text, /^bomb status 137\n$/, 'SIGKILLed by the OOM killer of its own cgroup');
  const pids = await talk(P.pids);
  const made = Number(/^forked (\d+) then Resource temporarily unavailable\n$/.exec(pids.text)?.[1]);
  assert.ok(made >= 1 && made <= 6, `${pids.text.trim()} (cap 8 with PID 1 and the handler)`);
});

test('caps: beyond maxPerAddress and maxConnections a one-line refusal, nothing created; a freed slot is taken again', async () => {
  const a = await hold(P.caps, /in\n/);
  const b = await hold(P.caps, /in\n/);
  const startsBefore = gw.events('sandbox.start').length;
  assert.equal((await talk(P.caps, '', { keepOpen: true })).text, 'wargate: too many connections to this challenge from your address; close one and try again\n');
  const c = await hold(P.caps, /in\n/, '127.0.0.2');
  assert.equal((await talk(P.caps, '', { from: '127.0.0.3', keepOpen: true })).text, 'wargate: this challenge is full right now; try again in a minute\n');
  assert.equal(gw.events('sandbox.start').length, startsBefore + 1, 'only the admitted connection made a sandbox');
  // A reset: the gateway knows at once that this client is gone (a FIN alone could be a half-close).
  const endsBefore = ends('client-closed');
  a.resetAndDestroy();
  await gw.waitFor(() => ends('client-closed') > endsBefore);
  const d = await hold(P.caps, /in\n/, '127.0.0.3');
  for (const s of [b, c, d]) s.resetAndDestroy();
  await gw.waitFor(() => ends('client-closed') === endsBefore + 4);
});

test('a shell won through the handler is inside that connection sandbox: its processes, its loopback, nothing of the host', async () => {
  const script = [
    'id -un',
    'hostname',
    'ps -e --no-headers -o comm | sort | tr "\\n" " "; echo',
    'ls /sys/class/net 2>/dev/null | wc -l',
    `python3 -c 'import socket; print(socket.if_nameindex())'`,
    `python3 -c 'import socket; socket.create_connection(("127.0.0.1", ${hostPort}), timeout=2)' 2>/dev/null; echo "host loopback: $?"`,
    `python3 -c 'import socket; socket.create_connection(("127.0.0.1", ${gw.port}), timeout=2)' 2>/dev/null; echo "gateway ssh port: $?"`,
    'exit',
  ].join('\n');
  const r = await talk(P.shell, script + '\n');
  const lines = r.text.split('\n');
  assert.equal(lines[0], 'player1');
  assert.equal(lines[1], 'chalbox');
  assert.equal(lines[2], 'init ps sh sort tr ', 'its own processes only: PID 1 and the shell with its pipeline');
  assert.equal(lines[3], '0', 'no /sys');
  assert.equal(lines[4], "[(1, 'lo')]");
  assert.equal(lines[5], 'host loopback: 1');
  assert.equal(lines[6], 'gateway ssh port: 1', 'unlike a player sandbox, no way back to the gateway');
  assert.equal(hostConnections, 0);
});

test("a daemon port relays every connection to one supervised program; its network is its loopback; a crash is logged and it comes back", async () => {
  const one = await talk(P.daemon, 'hi\n');
  const two = await talk(P.daemon, 'hi\n');
  const pid = /pid=(\d+)/.exec(one.text)?.[1];
  assert.match(one.text, /^daemon pid=\d+ user=13001 served=\d+ links=\['lo'\]\n$/);
  assert.equal(/pid=(\d+)/.exec(two.text)?.[1], pid, 'the same process serves both');
  assert.equal(Number(/served=(\d+)/.exec(two.text)?.[1]), Number(/served=(\d+)/.exec(one.text)?.[1]) + 1, 'state kept across connections');
  await talk(P.daemon, 'crash\n');
  await gw.waitFor((e) => e.event === 'challenge.daemon.crashed' && e.status === 'exit 3');
  await gw.waitFor((e) => e.event === 'challenge.daemon.started' && e.run === 2, 10_000);
  let after = '';
  for (let i = 0; i < 50 && !after.startsWith('daemon'); i++) {
    after = (await talk(P.daemon, 'hi\n')).text;
    if (!after.startsWith('daemon')) await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(after, /^daemon pid=\d+ user=13001 served=1 /, 'a fresh run');
});

test('wargate sessions lists connections and daemons with their port; wargate kill ends a connection and its sandbox', async () => {
  const socket = await hold(P.caps, /in\n/);
  const listed = spawnSync(WARGATE, ['sessions', '--json', '--state-dir', gw.stateDir], { encoding: 'utf8' });
  assert.equal(listed.status, 0, listed.stderr);
  const sessions = JSON.parse(listed.stdout) as { id: string; level: string; client: { address: string }; challengePort?: number; pids: number }[];
  const mine = sessions.find((s) => s.challengePort === P.caps + gw.challengePortOffset && s.client.address === '127.0.0.1');
  assert.ok(mine, listed.stdout);
  assert.equal(mine.level, 'player1');
  assert.ok(mine.pids >= 1);
  assert.ok(sessions.some((s) => s.challengePort === P.daemon + gw.challengePortOffset && s.client.address === 'daemon'), 'the daemon is listed');
  const table = spawnSync(WARGATE, ['sessions', '--state-dir', gw.stateDir], { encoding: 'utf8' });
  assert.match(table.stdout, new RegExp(`player1 \\(port ${P.caps + gw.challengePortOffset}\\)`));
  const killed = spawnSync(WARGATE, ['kill', mine.id, '--state-dir', gw.stateDir], { encoding: 'utf8' });
  assert.equal(killed.status, 0, killed.stderr);
  await closed(socket);
  assert.match(socket.received, /wargate: connection ended by the operator\n$/);
  await gw.waitFor((e) => e.event === 'challenge.end' && e.challenge === mine.id && e.reason === 'admin-kill');
});

test('a connection flood on a challenge port: refused beyond its cap, and an SSH login meanwhile still takes well under 2 s', async () => {
  const sshLogin = async () => {
    const started = performance.now();
    const r = await ssh(gw, 'player0', ['--', 'echo in'], undefined, 'player0');
    assert.equal(r.stdout, 'in\n', r.stderr);
    return performance.now() - started;
  };
  const quiet = await sshLogin();
  const flood: Promise<Reply>[] = [];
  for (let i = 0; i < 400; i++) flood.push(talk(P.flood, '', { keepOpen: true, timeoutMs: 60_000, from: `127.0.4.${(i % 200) + 1}` }).catch((e: Error) => ({ text: e.message, ms: 0 })));
  await new Promise((r) => setTimeout(r, 300));
  const during = await sshLogin();
  console.log(`# SSH login: ${quiet.toFixed(0)} ms quiet, ${during.toFixed(0)} ms during a flood of 400 connections`);
  assert.ok(during < 2000, `login during the flood took ${during} ms`);
  // Every connection beyond the 20 admitted is refused (the log holds at most 10 lines a second, the rest summed up).
  const port = P.flood + gw.challengePortOffset;
  const refused = () => gw.events('challenge.refused').filter((e) => e.port === port).reduce((n, e) => n + ((e.suppressed as number | undefined) ?? 1), 0);
  await gw.waitFor(() => refused() === 380, 20_000);
  assert.ok(gw.events('challenge.refused').length < 100, 'the log is not flooded');
  // The gateway stopping ends the 20 admitted connections and their sandboxes (sharedGateway checks nothing is left).
  await gw.stop();
  const results = await Promise.all(flood);
  assert.equal(results.filter((r) => r.text === 'wargate: this challenge is full right now; try again in a minute\n').length, 380);
});

test('a gateway SIGKILLed with live challenge connections: their sandboxes die with it, a restart reaps what it left', async () => {
  const own = await TestGateway.start({ config: { games: [gameDir] } });
  let again: TestGateway | undefined;
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const socket = connect({ host: '127.0.0.1', port: P.flood + own.challengePortOffset });
      socket.on('error', () => {});
      sockets.push(socket);
    }
    await own.waitFor(() => own.events('challenge.start').length === 3, 20_000);
    const killed = once(own.proc, 'exit');
    own.proc.kill('SIGKILL');
    await killed;
    const killedAt = Date.now();
    // Every process of every sandbox it made (the daemon's too) dies with it; zombies left for the host's init run nothing.
    const alive = () => gatewaySandboxProcesses(own).filter((pid) => !/^State:\s+Z/m.test(statusOf(pid)));
    while (alive().length > 0 && Date.now() - killedAt < 1000) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(alive(), [], 'sandbox processes 1 s after the gateway died');
    const left = own.events('sandbox.start').length + own.daemonLogs.filter((e) => e.event === 'sandbox.start').length;
    again = await TestGateway.start({ stateDir: own.stateDir, config: { games: [gameDir] } });
    assert.equal(again.logs.find((e) => e.event === 'reaper.startup')?.removed, left, 'the restart removed the records and cgroups of all 4');
    await assertNothingLeft(again);
  } finally {
    for (const s of sockets) s.destroy();
    await own.stop();
    if (again) {
      await again.stop();
      await assertNothingLeft(again);
      again.cleanup();
    }
    own.cleanup();
  }
});

function statusOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return 'State: Z (gone)';
  }
}
