// A network cut between client and gateway (issue 3, item 8): the client lives in a network
// namespace this test creates, joined to the host by a veth pair; the test sets the link down mid
// session. Nothing reaches the gateway any more — no FIN, no RST — so only the keepalive notices,
// and then the whole sandbox (a double-forked daemon included) is gone.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { collect, sshCommand } from './helpers/clients.js';
import { TestGateway } from './helpers/gateway.js';
import { assertNothingLeft, countSandboxProcesses } from './helpers/leftovers.js';

const tag = randomBytes(3).toString('hex');
const NS = `wgt-${tag}`;
const HOST_IF = `wgh${tag}`;
const CLIENT_IF = `wgc${tag}`;
// A /30 of our own, between the host and this test's client namespace only.
const octet = 16 + (parseInt(tag, 16) % 200);
const HOST_IP = `10.231.${octet}.1`;
const CLIENT_IP = `10.231.${octet}.2`;
const KEEPALIVE = { intervalSeconds: 1, countMax: 2 };

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
let gw: TestGateway;

before(async () => {
  ip('netns', 'add', NS);
  ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', CLIENT_IF);
  ip('link', 'set', CLIENT_IF, 'netns', NS);
  ip('addr', 'add', `${HOST_IP}/30`, 'dev', HOST_IF);
  ip('link', 'set', HOST_IF, 'up');
  ip('-n', NS, 'addr', 'add', `${CLIENT_IP}/30`, 'dev', CLIENT_IF);
  ip('-n', NS, 'link', 'set', CLIENT_IF, 'up');
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  gw = await TestGateway.start({ keepalive: KEEPALIVE, config: { listen: { host: HOST_IP, port: 0 } } });
});

after(async () => {
  await gw?.stop();
  try {
    if (gw) await assertNothingLeft(gw);
  } finally {
    gw?.cleanup();
    // Deleting one end deletes the pair (the namespace could outlive its name for a while: a
    // socket of the killed client may still be retransmitting its FIN into the cut link).
    ip('link', 'del', HOST_IF);
    ip('netns', 'del', NS);
  }
});

test('the link goes down mid-session: the keepalive ends it and the sandbox is gone', { timeout: 60_000 }, async (t) => {
  const { argv, env } = sshCommand(gw, 'level0', ['-tt', '-o', 'ServerAliveInterval=0', '-o', 'ConnectTimeout=10']);
  argv[argv.length - 1] = `level0@${HOST_IP}`;
  const client = spawn('ip', ['netns', 'exec', NS, 'ssh', ...argv], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const result = collect(client);
  try {
    const start = await gw.waitFor((e) => e.event === 'sandbox.start', 20_000);
    client.stdin!.write('setsid nohup sleep 1000 >/dev/null 2>&1 & echo daemon-started\n');
    let out = '';
    client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 10_000;
    // A line of its own: the terminal's echo of the typed command also ends with "daemon-started".
    while (!out.includes('\ndaemon-started\r\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(countSandboxProcesses(gw) >= 3, 'the shell and the daemon run');

    ip('link', 'set', HOST_IF, 'down');
    const cutAt = Date.now();
    const end = await gw.waitFor((e) => e.event === 'session.end' && e.session === start.sandbox, 20_000);
    const noticedMs = (end.time as number) - cutAt;
    assert.equal(end.reason, 'keepalive-timeout');
    // interval x (count + 1) plus scheduling slack: well before any TCP timeout could have fired.
    assert.ok(noticedMs < (KEEPALIVE.countMax + 2) * KEEPALIVE.intervalSeconds * 1000 + 2000, `noticed after ${noticedMs} ms`);
    await assertNothingLeft(gw, 1000);
    t.diagnostic(`link down -> keepalive-timeout after ${noticedMs} ms, cleanup ${end.cleanupMs} ms`);
  } finally {
    client.kill('SIGKILL');
    await result;
  }
});
