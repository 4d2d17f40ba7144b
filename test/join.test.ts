// A second terminal in the same sandbox (issue 4, item 5): the login shell shows a join token;
// `ssh LEVEL+TOKEN@host` with the level's password joins that sandbox, for the same level only and
// only while it lives; the sandbox lives while any connection is attached, the last one out ends it.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { Client, type ClientChannel } from 'ssh2';
import { ssh } from './helpers/clients.js';
import { TestGateway } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';
import { sharedGateway } from './helpers/shared-gateway.js';

let gw: TestGateway;
sharedGateway((g) => (gw = g));

async function login(username: string, password: string, gateway = gw): Promise<Client> {
  const client = new Client();
  const ready = once(client, 'ready');
  client.connect({ host: '127.0.0.1', port: gateway.port, username, password, tryKeyboard: false });
  await ready; // rejects with the client's 'error' (authentication failure included)
  return client;
}

/** Whether a login is refused at authentication. */
async function refused(username: string, password: string): Promise<boolean> {
  try {
    (await login(username, password)).end();
    return false;
  } catch (err) {
    return (err as { level?: string }).level === 'client-authentication';
  }
}

async function exec(client: Client, command: string): Promise<string> {
  const stream = await new Promise<ClientChannel>((resolve, reject) => client.exec(command, (err, s) => (err ? reject(err) : resolve(s))));
  let out = '';
  stream.on('data', (d: Buffer) => (out += d));
  await once(stream, 'close');
  return out;
}

/** Opens a login shell with a pty and returns the join token its welcome text shows. */
async function joinToken(client: Client, user: string): Promise<{ token: string; shell: ClientChannel }> {
  const shell = await new Promise<ClientChannel>((resolve, reject) => client.shell({ term: 'xterm' }, (err, s) => (err ? reject(err) : resolve(s))));
  let text = '';
  const pattern = new RegExp(`log in as ${user}\\+([a-z0-9]{12}) \\(same password\\)`);
  while (!pattern.test(text)) text += (await once(shell, 'data'))[0];
  return { token: pattern.exec(text)![1], shell };
}

const ended = (sandbox: string) => gw.waitFor((e) => e.event === 'session.end' && e.session === sandbox, 10_000);

test('LEVEL+TOKEN joins the same sandbox; it outlives the first connection and ends with the last one', async () => {
  const first = await login('level0', 'level0');
  const { token } = await joinToken(first, 'level0');
  await exec(first, 'echo from-the-first > /tmp/shared');
  const sandboxesBefore = gw.events('sandbox.start').length;

  const second = await login(`level0+${token}`, 'level0');
  assert.equal(await exec(second, 'cat /tmp/shared'), 'from-the-first\n', 'the second connection sees the first one\'s files');
  assert.equal(gw.events('sandbox.start').length, sandboxesBefore, 'no sandbox was created for the second connection');
  const joined = await gw.waitFor((e) => e.event === 'session.join', 5000);

  first.end();
  await once(first, 'close');
  assert.equal(await exec(second, 'cat /tmp/shared'), 'from-the-first\n', 'the sandbox lives while a connection is attached');
  assert.equal(gw.events('session.end').filter((e) => e.session === joined.session).length, 0);

  const end = ended(String(joined.session));
  second.end();
  await end;
  assert.ok(await refused(`level0+${token}`, 'level0'), 'a token of an ended sandbox is refused');
});

test('a join token works for its own level and password only; guesses are refused; OpenSSH joins with no configuration', async () => {
  const owner = await login('level0', 'level0');
  try {
    const { token } = await joinToken(owner, 'level0');
    assert.ok(await refused(`level1+${token}`, gw.password('level1')), 'another level cannot use the token');
    assert.ok(await refused(`level0+${token}`, 'wrong password'), 'the level password is still needed');
    assert.ok(await refused('level0+aaaaaaaaaaaa', 'level0'), 'a guessed token is refused');
    assert.ok(await refused('level0+', 'level0'), 'an empty token is refused');

    await exec(owner, 'echo openssh-was-here > /tmp/mark');
    const r = await ssh(gw, `level0+${token}`, ['--', 'cat /tmp/mark'], undefined, 'level0');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'openssh-was-here\n');
  } finally {
    owner.end();
  }
});

test('every session gets a join token of its own', async () => {
  const clients = await Promise.all([login('level0', 'level0'), login('level0', 'level0'), login('level1', gw.password('level1'))]);
  try {
    const tokens = await Promise.all(clients.map(async (c, i) => (await joinToken(c, i < 2 ? 'level0' : 'level1')).token));
    assert.equal(new Set(tokens).size, tokens.length, `tokens: ${tokens.join(' ')}`);
  } finally {
    for (const c of clients) c.end();
  }
});

test('a wrong token with the right password is a failed authentication attempt: counted to MaxAuthTries and penalised', async () => {
  // A gateway of its own: its penalties start from nothing, so none of this file's earlier failures
  // delay the answers, and the penalty seen below comes from these attempts alone.
  const own = await TestGateway.start();
  try {
    const owner = await login('level0', 'level0', own);
    const { token } = await joinToken(owner, 'level0');
    // One character off a live token of the same level: the password is right, the token is not.
    const user = `level0+${token.slice(0, -1)}${token.endsWith('a') ? 'b' : 'a'}`;
    const client = new Client();
    let attempts = 0;
    client.on('error', () => {});
    const closed = once(client, 'close');
    client.connect({
      host: '127.0.0.1', port: own.port, username: user, readyTimeout: 60_000,
      // The same login again after every failure, until the gateway stops answering (or 10 tries).
      authHandler: () => (++attempts <= 10 ? { type: 'password', username: user, password: 'level0' } : false),
    });
    await closed;
    const tooMany = await own.waitFor((e) => e.event === 'auth.too_many');
    assert.equal(tooMany.user, user);
    assert.equal(tooMany.failures, 6, 'each attempt counted as a failure');
    assert.equal(attempts, 6, 'the sixth failure ended the connection');
    // Past the free failures, the source's answers wait: the attempts went on its record too.
    const penalty = await own.waitFor((e) => e.event === 'auth.penalty');
    assert.equal(penalty.failures, 6);
    assert.equal(own.events('session.join').length, 0);

    const end = own.waitFor((e) => e.event === 'session.end');
    owner.end();
    await end;
  } finally {
    await own.stop();
    try {
      await assertNothingLeft(own);
    } finally {
      own.cleanup();
    }
  }
});
