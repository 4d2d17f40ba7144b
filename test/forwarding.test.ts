// Port forwarding happens inside the player's sandbox (issue 4, items 2, 3 and 6): `ssh -L`/`-W`
// and paramiko's direct-tcpip connect from the sandbox's own network namespace, `ssh -R` and
// paramiko's tcpip-forward listen there, the host's loopback services and link-local addresses are
// out of reach, and the gateway's own port on the sandbox's loopback leads back to the gateway.
// Agent, X11 and unix-socket forwarding are refused with an answer (item 4). Forwards held at once
// are capped (64 direct-tcpip channels, 16 listeners), so one connection cannot pile up sockets.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { test } from 'node:test';
import ssh2, { type ClientChannel } from 'ssh2';
import { collect, paramiko, spawnSsh, ssh } from './helpers/clients.js';
import { ssh2Exec, ssh2Login, ssh2Logout } from './helpers/real-clients.js';
import type { TestGateway } from './helpers/gateway.js';
import { sharedGateway } from './helpers/shared-gateway.js';

let gw: TestGateway;
sharedGateway((g) => (gw = g));

/** A TCP server on the host's loopback that greets and counts its connections. */
async function hostService(greeting: string): Promise<{ server: Server; port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    count++;
    socket.end(greeting);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, connections: () => count };
}

async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  return port;
}

/** A direct-tcpip channel (as `ssh -L`) to 127.0.0.1:PORT inside the sandbox; rejects with ssh2's open failure. */
function forwardOut(client: ssh2.Client, port: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => client.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (err, ch) => (err ? reject(err) : resolve(ch))));
}

/** A tcpip-forward (as `ssh -R`) of 127.0.0.1:PORT inside the sandbox; resolves with the port bound. */
function forwardIn(client: ssh2.Client, port: number): Promise<number> {
  return new Promise((resolve, reject) => client.forwardIn('127.0.0.1', port, (err, bound) => (err ? reject(err) : resolve(bound))));
}

/** Starts `command` on the connection and resolves once its stdout has shown `ready`. */
async function spawnInside(client: ssh2.Client, command: string): Promise<void> {
  const stream = await new Promise<ClientChannel>((resolve, reject) => client.exec(command, (err, s) => (err ? reject(err) : resolve(s))));
  let out = '';
  stream.on('data', (d: Buffer) => (out += d));
  while (!out.includes('ready')) await once(stream, 'data');
}

/** A python3 one-liner program for inside the sandbox: echo server on 127.0.0.1:PORT, one connection. */
const echoServer = (port: number) =>
  `python3 -c "import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); ` +
  `s.bind(('127.0.0.1', ${port})); s.listen(); print('ready', flush=True); c, _ = s.accept(); c.sendall(b'echo:' + c.recv(100)); c.close()"`;

test('paramiko: direct-tcpip reaches a server on the sandbox loopback, tcpip-forward listens inside, a closed port is refused', async () => {
  const r = await paramiko<{ echo: string; boundPort: number; forwarded: { data?: string; server?: [string, number] }; refusedError: string | null }>(
    gw,
    'forwarding_paramiko',
    'level0',
  );
  assert.equal(r.echo, 'echo:ping');
  assert.ok(r.boundPort >= 1024, `port chosen inside: ${r.boundPort}`);
  assert.equal(r.forwarded.data, 'pong');
  assert.deepEqual(r.forwarded.server, ['127.0.0.1', r.boundPort]);
  assert.match(r.refusedError ?? '', /Connect failed|failed|refused/i);
});

test('OpenSSH -L: a local port leads to a service on the sandbox loopback', async () => {
  const local = await freePort();
  const client = spawnSsh(gw, 'level0', ['-L', `${local}:localhost:7200`, '-o', 'ExitOnForwardFailure=yes', '--', echoServer(7200)]);
  const done = collect(client);
  let out = '';
  client.stdout!.on('data', (d: Buffer) => (out += d));
  while (!out.includes('ready')) await once(client.stdout!, 'data');
  const socket = connect(local, '127.0.0.1');
  socket.end('hello');
  let reply = '';
  for await (const chunk of socket) reply += chunk;
  assert.equal(reply, 'echo:hello');
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
});

test('OpenSSH -W: the gateway port inside is the gateway; the host loopback and link-local metadata are unreachable', async () => {
  const host = await hostService('host secret\n');
  try {
    const inside = await ssh(gw, 'level0', ['-W', `localhost:${gw.port}`]);
    assert.match(inside.stdout, /^SSH-2\.0-wargate/, 'the sandbox loopback port is the gateway itself');

    const toHost = await ssh(gw, 'level0', ['-W', `127.0.0.1:${host.port}`]);
    assert.notEqual(toHost.code, 0);
    assert.doesNotMatch(toHost.stdout, /host secret/);
    const metadata = await ssh(gw, 'level0', ['-W', '169.254.169.254:80']);
    assert.notEqual(metadata.code, 0);
    const named = await ssh(gw, 'level0', ['-W', 'example.com:80']);
    assert.notEqual(named.code, 0, 'names other than localhost and the sandbox hostname are refused');
    assert.equal(host.connections(), 0, 'the host service never saw a connection');
    assert.ok(gw.events('forward.local').some((e) => e.result === 'failed' && /refused/i.test(String(e.message))));
  } finally {
    host.server.close();
  }
});

test('OpenSSH -L aimed at a service on the host loopback: the forwarded port fails, the host service sees nothing', async () => {
  const host = await hostService('host secret\n');
  const local = await freePort();
  const client = spawnSsh(gw, 'level0', ['-L', `${local}:127.0.0.1:${host.port}`, '-o', 'ExitOnForwardFailure=yes', '--', 'echo ready; exec sleep 60']);
  const done = collect(client);
  try {
    let out = '';
    client.stdout!.on('data', (d: string) => (out += d));
    while (!out.includes('ready')) await once(client.stdout!, 'data');
    // The client accepts the local connection, then closes it when the gateway refuses the channel.
    const socket = connect(local, '127.0.0.1');
    let reply = '';
    for await (const chunk of socket) reply += chunk;
    assert.equal(reply, '', 'nothing came through the forwarded port');
    const failure = await gw.waitFor((e) => e.event === 'forward.local' && e.to === `127.0.0.1:${host.port}`);
    assert.equal(failure.result, 'failed');
    assert.match(String(failure.message), /refused/i, "the sandbox's own loopback has no such port");
    assert.equal(host.connections(), 0, 'the host service never saw a connection');
  } finally {
    client.kill('SIGTERM');
    host.server.close();
    await done;
  }
});

test('direct-tcpip: 64 channels at once, the 65th is refused and the connection lives on; closing one frees a slot', async () => {
  const client = await ssh2Login(gw, 'level0');
  try {
    // Inside: a server that keeps every connection and greets it with its number.
    await spawnInside(
      client,
      `python3 -c "import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); ` +
        `s.bind(('127.0.0.1', 7500)); s.listen(128); print('ready', flush=True); kept = []\n` +
        `while True: c, _ = s.accept(); kept.append(c); c.sendall(b'hi %d' % len(kept))"`,
    );
    const greeting = async (channel: ClientChannel) => String((await once(channel, 'data'))[0]);
    const channels = await Promise.all(Array.from({ length: 64 }, () => forwardOut(client, 7500)));
    const greetings = await Promise.all(channels.map(greeting));
    assert.equal(new Set(greetings).size, 64, 'each channel reached the server inside');

    // ssh2 answers a refused open with reason 2 (connect failed) whatever the cause; the log says which.
    await assert.rejects(forwardOut(client, 7500), (err: Error & { reason?: number }) => err.reason === 2);
    await gw.waitFor((e) => e.event === 'forward.local' && e.reason === 'max-direct-tcpip' && e.max === 64);
    assert.equal((await ssh2Exec(client, 'echo alive')).stdout, 'alive\n', 'the connection lives on');

    channels[0].close();
    await once(channels[0], 'close');
    const replacement = await forwardOut(client, 7500);
    // 65th connection the server saw: the refused open never reached it.
    assert.equal(await greeting(replacement), 'hi 65', 'a slot freed once a channel closed');
    await assert.rejects(forwardOut(client, 7500), (err: Error & { reason?: number }) => err.reason === 2, 'the limit holds again at 64 open');
  } finally {
    await ssh2Logout(client);
  }
});

test('tcpip-forward: 16 listeners at once (port 0 or not), the 17th is refused; cancelling one frees a slot', async () => {
  const client = await ssh2Login(gw, 'level0');
  try {
    // Asked all at once, for port 0: neither requests still opening nor equal requested ports may escape the cap.
    const asked = await Promise.allSettled(Array.from({ length: 17 }, () => forwardIn(client, 0)));
    const ports = asked.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    assert.equal(ports.length, 16, JSON.stringify(asked));
    assert.equal(new Set(ports).size, 16);
    await gw.waitFor((e) => e.event === 'forward.remote' && e.reason === 'max-remote-forwards' && e.max === 16);

    await new Promise<void>((resolve, reject) => client.unforwardIn('127.0.0.1', ports[0], (err) => (err ? reject(err) : resolve())));
    const again = await forwardIn(client, 7600);
    await assert.rejects(forwardIn(client, 7601), /Unable to bind/, 'the limit holds again at 16');

    // Inside the sandbox: the cancelled port is closed, the others listen.
    const probe = [...ports, again]
      .map((p) => `socket.socket().connect_ex(("127.0.0.1", ${p}))`)
      .join(', ');
    const r = await ssh2Exec(client, `python3 -c 'import socket; print(*[e == 0 for e in (${probe})])'`);
    assert.equal(r.stdout, ['False', ...Array(16).fill('True')].join(' ') + '\n', r.stderr);
  } finally {
    await ssh2Logout(client);
  }
});

test('OpenSSH -R: a port inside the sandbox leads back to the client side; privileged ports are refused', async () => {
  const service = await hostService('hello from the client side\n');
  try {
    const reader = `python3 -c "import socket; print(socket.create_connection(('127.0.0.1', 7300)).recv(100).decode(), end='')"`;
    const r = await ssh(gw, 'level0', ['-R', `127.0.0.1:7300:127.0.0.1:${service.port}`, '-o', 'ExitOnForwardFailure=yes', '--', reader]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello from the client side\n');

    const privileged = await ssh(gw, 'level0', ['-R', `80:127.0.0.1:${service.port}`, '-o', 'ExitOnForwardFailure=yes', '--', 'echo never']);
    assert.equal(privileged.code, 255);
    assert.match(privileged.stderr, /remote port forwarding failed/i);
    assert.doesNotMatch(privileged.stdout, /never/);
  } finally {
    service.server.close();
  }
});

test('ssh from inside the sandbox to the gateway port on its loopback logs in to a sandbox of its own', async () => {
  const inner = [
    'export SSH_ASKPASS=/tmp/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=:0',
    `printf '#!/bin/sh\\necho %s\\n' '${gw.password('level1')}' >/tmp/askpass && chmod 700 /tmp/askpass`,
    `ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p ${gw.port} level1@localhost 'echo inner=$(id -un); ls /tmp' </dev/null`,
    'echo outer=$(id -un)',
  ].join('; ');
  const level1Logins = () => gw.events('session.start').filter((e) => e.user === 'level1');
  const before = level1Logins().length;
  const r = await ssh(gw, 'level0', ['--', inner]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /inner=level1\n/);
  assert.doesNotMatch(r.stdout.split('inner=level1')[1].split('outer=')[0], /askpass/, "the inner login has a /tmp of its own");
  assert.match(r.stdout, /outer=level0\n/);
  const innerLogins = level1Logins().slice(before);
  assert.equal(innerLogins.length, 1, 'one inner login, in a sandbox of its own');
  assert.equal(innerLogins[0].client, '127.0.0.1', "the inner login is named by the player's own address");
});

test('git over SSH from inside a sandbox: clone the game repository, and its pre-receive hook refuses a push', async () => {
  const inner = [
    'export SSH_ASKPASS=/tmp/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=:0',
    "export GIT_SSH_COMMAND='ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'",
    "printf '#!/bin/sh\\necho level0\\n' >/tmp/askpass && chmod 700 /tmp/askpass",
    `cd /tmp && git clone -q ssh://level0@localhost:${gw.port}/srv/git/demo.git </dev/null`,
    'head -1 demo/README.md',
    'cd demo && echo hello >hello.txt && git add hello.txt && git -c user.name=p -c user.email=p@example.org commit -qm hello',
    'git push -q origin main </dev/null; echo push=$?',
  ].join(' && ');
  const r = await ssh(gw, 'level0', ['--', inner]);
  assert.match(r.stdout, /^# The demo repository\n/);
  assert.match(r.stdout, /push=1\n/, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /demo hook: refusing the push to refs\/heads\/main/);
});

test('agent forwarding, X11 and unix-socket forwarding are refused, each with an answer; the connection lives on', async () => {
  const client = await ssh2Login(gw, 'level0');
  // An agent on the client side that is never reached: the gateway refuses to forward it.
  const agentClient = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    agentClient.once('ready', resolve).once('error', reject);
    agentClient.connect({ host: '127.0.0.1', port: gw.port, username: 'level0', password: gw.password('level0'), agent: '/nonexistent/agent.sock', agentForward: true, strictVendor: false });
  });
  try {
    // ssh2's client asks with want-reply and reports a refusal as an error of the exec.
    await assert.rejects(ssh2Exec(agentClient, 'true'), /agent forwarding/i);
    await assert.rejects(ssh2Exec(client, 'true', { x11: true }), /X11/i);
    // streamlocal-forward@openssh.com (ssh -R /path:...) and direct-streamlocal@openssh.com (ssh -L ...:/path).
    await assert.rejects(
      new Promise<void>((resolve, reject) => client.openssh_forwardInStreamLocal('/tmp/player.sock', (err) => (err ? reject(err) : resolve()))),
      /Unable to bind|failed/i,
    );
    await assert.rejects(
      new Promise<void>((resolve, reject) => client.openssh_forwardOutStreamLocal('/tmp/player.sock', (err) => (err ? reject(err) : resolve()))),
      (err: Error & { reason?: number }) => err.reason === 1, // SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
    );
    const alive = await ssh2Exec(client, 'echo alive; echo "agent=$SSH_AUTH_SOCK display=$DISPLAY"');
    assert.equal(alive.stdout, 'alive\nagent= display=\n');
  } finally {
    await ssh2Logout(client);
    await ssh2Logout(agentClient);
  }
  // OpenSSH's client: a refused -R for a socket path is a warning (below the helper's LogLevel), the session runs on.
  const r = await ssh(gw, 'level0', ['-R', '/tmp/player.sock:127.0.0.1:1', '--', 'echo alive; ls -a /tmp']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'alive\n.\n..\n', 'no socket was made, inside or out');
});
