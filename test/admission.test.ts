// Admission (issue 3, item 4): at most admission.maxSandboxes live sandboxes, at most
// admission.maxPerAddress per client address. A login beyond either is authenticated, told why in
// one line (as OpenSSH and paramiko show it), and disconnected; no sandbox or session is made. The
// counting logic alone, then a real gateway with maxSandboxes 2 and maxPerAddress 1, where clients
// play several addresses by binding to 127.0.0.x.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_LIMITS } from '../src/config/schema.js';
import { ERRORS, WargateError } from '../src/errors/catalog.js';
import type { SandboxBackend } from '../src/sandbox/types.js';
import { Admission, addressKey } from '../src/session/admission.js';
import { SessionManager } from '../src/session/session-manager.js';
import { fakeLevel, fakeSandbox } from './helpers/fakes.js';
import { collect, paramiko, spawnSsh, ssh } from './helpers/clients.js';
import type { TestGateway } from './helpers/gateway.js';
import { sharedGateway } from './helpers/shared-gateway.js';

const FULL = `wargate: ${ERRORS.WG_ERR_TOO_MANY_SANDBOXES.player}`;
const FROM_ADDRESS = `wargate: ${ERRORS.WG_ERR_TOO_MANY_FROM_ADDRESS.player}`;

const refusedWith = (code: string) => (err: unknown) => err instanceof WargateError && err.code === code;

// ---------------------------------------------------------------------------------------------
// The counting.

describe('Admission (counting only)', () => {
  test('limits in all and per address; a released slot is free again; release twice counts once', () => {
    const a = new Admission({ maxSandboxes: 3, maxPerAddress: 2 });
    const r1 = a.admit('192.0.2.1');
    a.admit('192.0.2.1');
    assert.throws(() => a.admit('192.0.2.1'), refusedWith('WG_ERR_TOO_MANY_FROM_ADDRESS'));
    a.admit('192.0.2.2');
    assert.throws(() => a.admit('192.0.2.3'), refusedWith('WG_ERR_TOO_MANY_SANDBOXES'));
    assert.equal(a.count(), 3);
    r1();
    r1();
    assert.equal(a.count(), 2);
    assert.equal(a.count('192.0.2.1'), 1);
    a.admit('192.0.2.3');
    assert.throws(() => a.admit('192.0.2.4'), refusedWith('WG_ERR_TOO_MANY_SANDBOXES'));
  });

  test('the server-wide limit is reported first; an address entry goes with its last slot', () => {
    const a = new Admission({ maxSandboxes: 1, maxPerAddress: 1 });
    const release = a.admit('192.0.2.1');
    assert.throws(() => a.admit('192.0.2.1'), refusedWith('WG_ERR_TOO_MANY_SANDBOXES'));
    assert.equal(a.addresses, 1);
    release();
    assert.equal(a.addresses, 0);
  });

  test('an IPv4 client of a dual-stack listener counts as its IPv4 address, an IPv6 one by its /64', () => {
    assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('2001:DB8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('2001:db8:0:0:ffff::2'), addressKey('2001:db8::1'), 'one /64 is one address');
    const a = new Admission({ maxSandboxes: 10, maxPerAddress: 1 });
    a.admit('192.0.2.7');
    assert.throws(() => a.admit('::ffff:192.0.2.7'), refusedWith('WG_ERR_TOO_MANY_FROM_ADDRESS'));
  });
});

describe('SessionManager admission (fake backend)', () => {

  function backend() {
    const state = { created: 0, letDestroyFinish: () => {} };
    const b: SandboxBackend = {
      create: async (spec) => {
        state.created++;
        return fakeSandbox(spec.id, { destroy: () => new Promise<void>((resolve) => (state.letDestroyFinish = resolve)) });
      },
      reap: async () => 0,
      close: async () => {},
    };
    return { b, state };
  }

  test('a refused open creates nothing; a closing session holds its slot until its close completed', async () => {
    const { b, state } = backend();
    const limits = { ...DEFAULT_LIMITS, idleTimeoutSeconds: 0, maxSessionSeconds: 0 };
    const manager = new SessionManager(b, limits, pino({ level: 'silent' }), { maxSandboxes: 1, maxPerAddress: 1 });
    const first = manager.open(fakeLevel, { address: '192.0.2.1', port: 1 });
    assert.throws(() => manager.open(fakeLevel, { address: '192.0.2.2', port: 2 }), refusedWith('WG_ERR_TOO_MANY_SANDBOXES'));
    await new Promise((r) => setImmediate(r));
    assert.equal(state.created, 1, 'no sandbox for the refused login');
    assert.equal(manager.size, 1);

    const closing = manager.close(first, 'disconnect');
    await new Promise((r) => setImmediate(r));
    assert.throws(() => manager.open(fakeLevel, { address: '192.0.2.2', port: 2 }), refusedWith('WG_ERR_TOO_MANY_SANDBOXES'), 'still destroying: still counted');
    state.letDestroyFinish();
    await closing;
    const second = manager.open(fakeLevel, { address: '192.0.2.2', port: 2 });
    assert.equal(manager.size, 1);
    const done = manager.close(second, 'disconnect');
    await new Promise((r) => setImmediate(r));
    state.letDestroyFinish();
    await done;
    assert.equal(manager.size, 0);
  });
});

// ---------------------------------------------------------------------------------------------
// End to end: maxSandboxes 2, maxPerAddress 1.

let gw: TestGateway;
sharedGateway((g) => (gw = g), { config: { admission: { maxSandboxes: 2, maxPerAddress: 1 } } });

/** Clients a test started and may leave running on failure: killed by pid in `after`. */
const clients: ChildProcess[] = [];
after(() => {
  for (const c of clients) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

const bind = (address: string) => ['-o', `BindAddress=${address}`];

interface Login {
  mode: string;
  stdout: string;
  stderr: string;
  status: number;
  closedByServer: boolean;
}

/**
 * Runs `body` while one login from each of `addresses` holds a sandbox (its sandbox started), then
 * ends those logins and waits until their sessions have ended, whatever `body` did.
 */
async function holding(addresses: string[], body: (release: (address: string) => Promise<void>) => Promise<void>): Promise<void> {
  const held = new Map<string, { child: ChildProcess; done: Promise<unknown>; session: unknown }>();
  const release = async (address: string) => {
    const h = held.get(address);
    if (!h) return;
    held.delete(address);
    h.child.kill('SIGTERM');
    await h.done;
    await gw.waitFor((e) => e.event === 'session.end' && e.session === h.session, 10_000);
  };
  try {
    for (const address of addresses) {
      const started = gw.events('session.start').length;
      const child = spawnSsh(gw, 'level0', [...bind(address), '--', 'sleep 60']);
      clients.push(child);
      const done = collect(child);
      const entry = await gw.waitFor((e) => e.event === 'session.start' && e.client === address && gw.events('session.start').indexOf(e) >= started, 20_000);
      held.set(address, { child, done, session: entry.session });
      await gw.waitFor((e) => e.event === 'sandbox.start' && e.sandbox === entry.session, 20_000);
    }
    await body(release);
  } finally {
    for (const address of [...held.keys()]) await release(address);
  }
}

/** Resolves once every session started so far has ended (a finished client's session may still be closing). */
const allEnded = () => gw.waitFor(() => gw.events('session.end').length === gw.events('session.start').length, 10_000);

/** Sandboxes and sessions made so far, and refusals logged, to prove a refused login made nothing. */
const tally = () => ({
  sandboxes: gw.events('sandbox.start').length,
  sessions: gw.events('session.start').length,
  refused: gw.events('admission.refused').length,
});

/** Asserts the tally, giving log lines still in the pipe from the gateway a moment to arrive. */
async function expectTally(expected: ReturnType<typeof tally>, message?: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline && JSON.stringify(tally()) !== JSON.stringify(expected)) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(tally(), expected, message);
}

describe('end to end (maxSandboxes 2, maxPerAddress 1)', () => {
  test('a second login from one address: OpenSSH exec prints the reason on stderr and exits 1; nothing is made', { timeout: 60_000 }, async () => {
    await holding(['127.0.0.1'], async () => {
      const before = tally();
      const r = await ssh(gw, 'level0', ['--', 'id -un']);
      assert.equal(r.stderr.trim(), FROM_ADDRESS);
      assert.equal(r.stdout, '');
      assert.equal(r.code, 1);
      await expectTally({ ...before, refused: before.refused + 1 }, 'a refusal line, no sandbox, no session');
      const line = gw.events('admission.refused').at(-1)!;
      assert.equal(line.code, 'WG_ERR_TOO_MANY_FROM_ADDRESS');
      assert.equal(line.client, '127.0.0.1');
      assert.equal(line.user, 'level0');
    });
  });

  test('OpenSSH ssh -tt (an interactive login) shows the reason on the terminal and exits 1', { timeout: 60_000 }, async () => {
    await holding(['127.0.0.1'], async () => {
      const r = await ssh(gw, 'level0', ['-tt']);
      assert.equal(r.stdout, `${FROM_ADDRESS}\r\n`);
      assert.equal(r.code, 1);
    });
  });

  test('paramiko: exec has the reason on stderr with status 1; invoke_shell has it in the terminal; the server disconnects', { timeout: 60_000 }, async () => {
    await holding(['127.0.0.1'], async () => {
      const before = tally();
      const exec = await paramiko<Login>(gw, 'admission_login', 'level0', { mode: 'exec' });
      assert.deepEqual(exec, { mode: 'exec', stdout: '', stderr: `${FROM_ADDRESS}\n`, status: 1, closedByServer: true });
      const shell = await paramiko<Login>(gw, 'admission_login', 'level0', { mode: 'shell' });
      assert.deepEqual(shell, { mode: 'shell', stdout: `${FROM_ADDRESS}\r\n`, stderr: '', status: 1, closedByServer: true });
      await expectTally({ ...before, refused: before.refused + 2 });
    });
  });

  test('the server full: a third address is refused with its own message until a sandbox has gone', { timeout: 60_000 }, async () => {
    await holding(['127.0.0.1', '127.0.0.2'], async (release) => {
      const before = tally();
      const refused = await paramiko<Login>(gw, 'admission_login', 'level0', { mode: 'exec', source: '127.0.0.3' });
      assert.equal(refused.stderr, `${FULL}\n`);
      assert.equal(refused.status, 1);
      const openssh = await ssh(gw, 'level0', [...bind('127.0.0.3'), '--', 'id -un']);
      assert.equal(openssh.stderr.trim(), FULL);
      assert.equal(openssh.code, 1);
      await expectTally({ ...before, refused: before.refused + 2 });
      assert.equal(gw.events('admission.refused').at(-1)!.code, 'WG_ERR_TOO_MANY_SANDBOXES');

      await release('127.0.0.2');
      const admitted = await ssh(gw, 'level0', [...bind('127.0.0.3'), '--', 'id -un']);
      assert.equal(admitted.stdout, 'level0\n');
      assert.equal(admitted.code, 0);
    });
    await allEnded();
  });

  test('six logins from one address at the same instant: exactly one gets a sandbox', { timeout: 60_000 }, async () => {
    await allEnded();
    const before = tally();
    const runs = await Promise.all(Array.from({ length: 6 }, () => ssh(gw, 'level0', ['--', 'sleep 1; echo in'])));
    const admitted = runs.filter((r) => r.code === 0);
    assert.equal(admitted.length, 1, JSON.stringify(runs));
    assert.equal(admitted[0].stdout, 'in\n');
    for (const r of runs.filter((x) => x.code !== 0)) {
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim(), FROM_ADDRESS);
    }
    await expectTally({ sandboxes: before.sandboxes + 1, sessions: before.sessions + 1, refused: before.refused + 5 });
  });

  test('six logins from six addresses at the same instant: exactly two get a sandbox', { timeout: 60_000 }, async () => {
    await allEnded();
    const before = tally();
    const runs = await Promise.all(
      Array.from({ length: 6 }, (_, i) => ssh(gw, 'level0', [...bind(`127.0.0.${11 + i}`), '--', 'sleep 1; echo in'])),
    );
    assert.equal(runs.filter((r) => r.code === 0 && r.stdout === 'in\n').length, 2, JSON.stringify(runs));
    const refused = runs.filter((r) => r.code !== 0);
    assert.equal(refused.length, 4);
    for (const r of refused) assert.equal(r.stderr.trim(), FULL);
    await expectTally({ sandboxes: before.sandboxes + 2, sessions: before.sessions + 2, refused: before.refused + 4 });
  });
});
