// The admin API end to end (issue 3, item 7): `wargate sessions` and `wargate kill` against a real
// gateway with two live sessions (the OpenSSH client with a pty, and a paramiko login), over the
// unix socket only root may use. Also: malformed requests get error replies and the gateway keeps
// serving; a second gateway on the same state dir is refused; the socket is gone after stop and a
// stale one is replaced at start.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { collect, PYTHON, spawnSsh, type Result } from './helpers/clients.js';
import { TestGateway, WARGATE, type LogEntry } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';
import { SessionDriver } from './helpers/session-driver.js';

interface SessionInfo {
  id: string;
  game: string;
  level: string;
  client: { address: string; port: number };
  startedAt: string;
  lastActivity: string;
  attached: boolean;
  memoryBytes: number;
  pids: number;
}

let gw: TestGateway;
let socketPath: string;
let driver: SessionDriver | undefined;
/** The OpenSSH client with a pty (session A, level0) and the paramiko login (session B, level1). */
let sshA: ChildProcess | undefined;
let idA: string;
let idB: string;
const extra: TestGateway[] = [];

before(async () => {
  gw = await TestGateway.start();
  socketPath = join(gw.stateDir, 'admin.sock');
});
after(async () => {
  if (sshA && sshA.exitCode === null && sshA.signalCode === null) sshA.kill('SIGKILL');
  await driver?.quit();
  try {
    await gw.stop();
    for (const g of extra) await g.stop();
    await assertNothingLeft(gw);
    for (const g of extra) await assertNothingLeft(g);
  } finally {
    for (const g of extra) g.cleanup();
    gw.cleanup();
  }
});

const wargate = (...args: string[]): Promise<Result> => collect(spawn(WARGATE, [...args], { stdio: ['ignore', 'pipe', 'pipe'] }));

/** The players' sessions listed (the demo's challenge daemon, always there, is left out: test/challenges.test.ts covers it). */
async function listJson(...args: string[]): Promise<SessionInfo[]> {
  const r = await wargate('sessions', '--json', ...(args.length ? args : ['--socket', socketPath]));
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as SessionInfo[]).filter((s) => s.client.address !== 'daemon');
}

/** Resolves with the session id of the next session.start of `user` whose sandbox is up. */
async function sessionOf(user: string, known: Set<unknown>): Promise<string> {
  const start = await gw.waitFor((e) => e.event === 'session.start' && e.user === user && !known.has(e.session), 30_000);
  await gw.waitFor((e) => e.event === 'sandbox.start' && e.sandbox === start.session, 30_000);
  return start.session as string;
}

/** One raw request on the admin socket: what is written, then the reply line (or '' if none). */
async function raw(write: (socket: ReturnType<typeof connect>) => void): Promise<string> {
  const socket = connect(socketPath);
  let reply = '';
  socket.setEncoding('utf8').on('data', (d: string) => (reply += d));
  socket.on('error', () => {});
  await once(socket, 'connect');
  write(socket);
  await new Promise((resolve) => socket.once('close', resolve));
  return reply;
}

test('the socket is root-only: a socket file of mode 0600, in a directory only root can write', () => {
  const st = lstatSync(socketPath);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o7777, 0o600);
  assert.equal(st.uid, 0);
  assert.equal(lstatSync(gw.stateDir).mode & 0o022, 0);
});

test('sessions --json lists both live sessions with level, client, attachment, memory and processes', async () => {
  const known = new Set(gw.events('session.start').map((e) => e.session));
  sshA = spawnSsh(gw, 'level0', ['-tt']);
  sshA.stdout!.resume();
  sshA.stderr!.resume();
  idA = await sessionOf('level0', known);
  driver = await SessionDriver.start(gw, [{ user: 'level1', password: gw.password('level1') }]);
  idB = await sessionOf('level1', known);

  // Stats are read from the sandbox's cgroup once its start has been handed to the session.
  let sessions: SessionInfo[] = [];
  const deadline = Date.now() + 5000;
  do {
    sessions = await listJson();
  } while (!(sessions.length === 2 && sessions.every((s) => s.pids > 0)) && Date.now() < deadline);

  assert.deepEqual(sessions.map((s) => s.id).sort(), [idA, idB].sort());
  for (const [id, level] of [[idA, 'level0'], [idB, 'level1']]) {
    const s = sessions.find((x) => x.id === id)!;
    assert.equal(s.game, 'demo');
    assert.equal(s.level, level);
    assert.equal(s.client.address, '127.0.0.1');
    assert.ok(s.client.port > 0);
    assert.equal(s.attached, true);
    assert.ok(s.memoryBytes > 0, `memory of ${level}: ${s.memoryBytes}`);
    assert.ok(s.pids > 0, `pids of ${level}: ${s.pids}`);
    assert.ok(!Number.isNaN(Date.parse(s.startedAt)) && !Number.isNaN(Date.parse(s.lastActivity)));
  }

  // The same socket, found from the state dir and from the config file.
  assert.equal((await listJson('--state-dir', gw.stateDir)).length, 2);
  assert.equal((await listJson('--config', join(gw.stateDir, 'test-config.yaml'))).length, 2);
});

test('sessions prints a table with one row per session', async () => {
  const r = await wargate('sessions', '--socket', socketPath);
  assert.equal(r.code, 0, r.stderr);
  const all = r.stdout.trimEnd().split('\n');
  assert.match(all[0], /^ID\s+GAME\s+LEVEL\s+CLIENT\s+STARTED\s+IDLE\s+ATTACHED\s+MEMORY\s+PIDS$/);
  assert.match(all.find((l) => / daemon /.test(l)) ?? '', /^[0-9a-f]{16}\s+demo\s+level22 \(port \d+\)\s+daemon\s/, "the demo's challenge daemon has a row");
  const lines = all.filter((l) => !/ daemon /.test(l));
  assert.equal(lines.length, 3);
  for (const [id, level] of [[idA, 'level0'], [idB, 'level1']]) {
    const row = lines.find((l) => l.startsWith(id));
    assert.ok(row, `a row for ${id}:\n${r.stdout}`);
    assert.match(row, new RegExp(`^${id}\\s+demo\\s+${level}\\s+127\\.0\\.0\\.1:\\d+\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+\\d+s\\s+yes\\s+[\\d.]+[KMG]\\s+[1-9]\\d*$`));
  }
});

test('kill ends one session: its client exits, its sandbox is destroyed, the other one still works', async () => {
  const exited = once(sshA!, 'exit');
  const r = await wargate('kill', idA, '--socket', socketPath);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^ended session ${idA} \\(demo/level0 from 127\\.0\\.0\\.1\\)\\n$`));
  await Promise.race([exited, new Promise((_, reject) => setTimeout(() => reject(new Error('ssh did not exit')), 10_000))]);
  const end: LogEntry = await gw.waitFor((e) => e.event === 'session.end' && e.session === idA);
  assert.equal(end.reason, 'admin-kill');
  assert.ok(gw.events('admin.kill').some((e) => e.session === idA));

  const reply = await driver!.exec(0, 'id -un');
  assert.equal(reply.stdout, 'level1\n');
  assert.deepEqual((await listJson()).map((s) => s.id), [idB]);
});

test('kill of an unknown id says so in one line and exits 1', async () => {
  const r = await wargate('kill', 'nosuchsession', '--socket', socketPath);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, 'wargate: no live session with id "nosuchsession"\n');
  assert.equal((await listJson()).length, 1, 'nothing else was ended');
});

test('without a gateway (or with an impossible socket path) the CLI says so in one line and exits 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wargate-admin-'));
  try {
    for (const cmd of [['sessions'], ['kill', idB]]) {
      const r = await wargate(...cmd, '--state-dir', dir);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `wargate: no gateway is listening on ${join(dir, 'admin.sock')}\n`);
    }
    // Longer than a unix socket path can be: said plainly, not truncated into another path.
    const long = await wargate('sessions', '--socket', join(dir, 'x'.repeat(120)));
    assert.equal(long.code, 1);
    assert.match(long.stderr, /^wargate: the admin socket path .* is longer than the 107 bytes a unix socket path may hold; .*\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const cmd of ['sessions', 'kill']) {
    const help = await wargate(cmd, '--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--config[\s\S]*--state-dir[\s\S]*--socket/);
  }
});

test('malformed, oversized, silent and half-closed requests get error replies; the gateway keeps serving', async () => {
  const error = (reply: string) => {
    const doc = JSON.parse(reply) as { ok: boolean; code: string; error: string };
    assert.equal(doc.ok, false);
    assert.equal(doc.code, 'WG_ERR_ADMIN');
    return doc.error;
  };
  assert.match(error(await raw((s) => s.write('hello\n'))), /malformed request: not a JSON document/);
  assert.match(error(await raw((s) => s.write('{"op":"reboot"}\n'))), /malformed request: expected/);
  assert.match(error(await raw((s) => s.write('{"op":"kill"}\n'))), /malformed request: expected/);
  assert.match(error(await raw((s) => s.write('[1,2]\n'))), /malformed request/);
  assert.match(error(await raw((s) => s.write('x'.repeat(10_000)))), /longer than 4096 bytes/);
  assert.match(error(await raw((s) => s.end())), /empty request/);
  assert.match(error(await raw(() => {})), /no complete request line within/);
  // Half-closed without a newline: still one whole request.
  const listed = JSON.parse(await raw((s) => s.end('{"op":"list"}'))) as { ok: boolean; sessions: SessionInfo[] };
  assert.equal(listed.ok, true);
  assert.deepEqual(listed.sessions.filter((s) => s.client.address !== 'daemon').map((s) => s.id), [idB]);
  // A client that vanishes mid-request.
  await raw((s) => s.destroy());

  const refused = gw.events('admin.bad_request');
  assert.ok(refused.length >= 7, `bad requests logged: ${refused.length}`);
  assert.ok(refused.every((e) => e.code === 'WG_ERR_ADMIN'));
  assert.equal(gw.proc.exitCode, null, 'the gateway is still running');
  assert.deepEqual((await listJson()).map((s) => s.id), [idB]);
  assert.equal((await driver!.exec(0, 'echo still')).stdout, 'still\n');
});

test('a second gateway on the same state dir is refused before it touches anything', () => {
  const r = spawnSync(WARGATE, ['serve', '--config', join(gw.stateDir, 'test-config.yaml')], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /^wargate: WG_ERR_ADMIN: another process \(another gateway\?\) is listening on .*admin\.sock\n$/);
  assert.equal(r.stdout.split('\n').filter((l) => l.includes('reaper.startup')).length, 0, 'it reaped nothing');
  assert.ok(lstatSync(socketPath).isSocket(), 'the running gateway keeps its socket');
});

test('the socket is removed at stop, and a stale one is replaced at the next start', async () => {
  await driver!.quit();
  await gw.stop();
  assert.ok(!existsSync(socketPath), 'socket removed at stop');
  await assertNothingLeft(gw);

  // A socket file nobody listens on, as a gateway killed with SIGKILL leaves it.
  const bind = spawnSync(PYTHON, ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socketPath]);
  assert.equal(bind.status, 0, String(bind.stderr));
  assert.ok(lstatSync(socketPath).isSocket());
  const again = await TestGateway.start({ stateDir: gw.stateDir });
  extra.push(again);
  assert.equal(lstatSync(socketPath).mode & 0o7777, 0o600);
  assert.deepEqual(await listJson(), []);
  await again.stop();
  assert.ok(!existsSync(socketPath), 'socket removed at stop');
});
