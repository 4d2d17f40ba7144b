// Faults of the gateway itself (issue 3, item 8): SIGKILLed with 50 live sandboxes and with more
// sandboxes half-way through their creation. Every sandbox process dies within 1 s by construction
// (the lifeline pipe), and a gateway restarted on the same state dir removes every record and cgroup
// before it accepts logins, then serves.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { collect, spawnSsh, ssh } from './helpers/clients.js';
import { TestGateway } from './helpers/gateway.js';
import { assertNothingLeft, cgroupsOf, gatewaySandboxProcesses, liveDaemons } from './helpers/leftovers.js';
import { SessionDriver } from './helpers/session-driver.js';

const LIVE = 50;
const MID_SPAWN = 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function state(pid: number): string {
  try {
    return /State:\s+(\S)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
  } catch {
    return '';
  }
}

test(`gateway SIGKILLed with ${LIVE} live sandboxes and ${MID_SPAWN} being created: all die, a restart removes everything`, { timeout: 180_000 }, async (t) => {
  // Many logins from one address: raise the per-address admission cap.
  const g = await TestGateway.start({ config: { admission: { maxSandboxes: 1000, maxPerAddress: 1000 } } });
  const clients: ReturnType<typeof spawnSsh>[] = [];
  let driver: SessionDriver | undefined;
  let g2: TestGateway | undefined;
  try {
    driver = await SessionDriver.start(g, Array.from({ length: LIVE }, () => ({ user: 'level0', password: 'level0' })));
    await g.waitFor(() => g.events('sandbox.start').length >= LIVE, 60_000);
    // A daemon in one of them, as players leave behind.
    await driver.exec(0, 'setsid nohup sleep 1000 >/dev/null 2>&1 & echo started');

    // More logins at once; the gateway dies as soon as the first of them starts its sandbox.
    const before = g.events('session.start').length;
    for (let i = 0; i < MID_SPAWN; i++) {
      const c = spawnSsh(g, 'level0', ['-tt', '--', 'sleep 100']);
      void collect(c);
      clients.push(c);
    }
    await g.waitFor(() => g.events('session.start').length > before, 30_000);
    const exited = once(g.proc, 'exit');
    g.proc.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    t.diagnostic(`killed with ${g.events('sandbox.start').length} sandboxes started, ${g.events('session.start').length} sessions opened`);

    // Within 1 s nothing of any logged sandbox runs (zombies waiting for the host's init are dead).
    const alive = () => gatewaySandboxProcesses(g).filter((pid) => !['Z', ''].includes(state(pid)));
    while (alive().length > 0 && Date.now() - killedAt < 1000) await sleep(10);
    assert.deepEqual(alive(), [], 'sandbox processes 1 s after the gateway died');
    t.diagnostic(`every sandbox process gone ${Date.now() - killedAt} ms after SIGKILL`);
    // Even the half-created ones, never logged: their cgroups hold no process any more.
    const inCgroups = () =>
      cgroupsOf(g.stateDir, { sandboxesOnly: true }).flatMap((dir) => {
        try {
          return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
        } catch {
          return [];
        }
      });
    while (inCgroups().length > 0 && Date.now() - killedAt < 1000) await sleep(10);
    assert.deepEqual(inCgroups(), [], 'processes in sandbox cgroups 1 s after the gateway died');

    await driver.quit().catch(() => {});
    for (const c of clients) c.kill('SIGKILL');

    g2 = await TestGateway.start({ stateDir: g.stateDir, config: { admission: { maxSandboxes: 1000, maxPerAddress: 1000 } } });
    const startup = g2.logs.find((e) => e.event === 'reaper.startup')!;
    assert.ok((startup.removed as number) >= LIVE, `the restart removed ${startup.removed} leftovers`);
    t.diagnostic(`restart: reaper removed ${startup.removed}`);
    // Only the new gateway's own: the demo's challenge daemon, started with it.
    const daemons = liveDaemons(g2);
    assert.deepEqual(cgroupsOf(g.stateDir, { sandboxesOnly: true }).filter((dir) => !daemons.has(basename(dir))), [], 'sandbox cgroups after the restart');
    assert.deepEqual(readdirSync(join(g.stateDir, 'sandboxes')).filter((f) => !daemons.has(f.replace(/\.json$/, ''))), [], 'records after the restart');
    const r = await ssh(g2, 'level0', ['--', 'echo served']);
    assert.equal(r.stdout, 'served\n');
  } finally {
    for (const c of clients) c.kill('SIGKILL');
    await driver?.quit().catch(() => {});
    await g.stop();
    if (g2) {
      await g2.stop();
      await assertNothingLeft(g2);
    }
    assert.deepEqual(cgroupsOf(g.stateDir), [], 'cgroups of this state dir after the last stop');
    g.cleanup();
  }
});

test("a sandbox whose PID 1 dies (killed from the host) ends its player's connection and leaves nothing", { timeout: 60_000 }, async () => {
  const g = await TestGateway.start();
  const driver = await SessionDriver.start(g); // logged in, no channel open: only the gateway can end it
  try {
    const start = await g.waitFor((e) => e.event === 'sandbox.start', 20_000);
    process.kill(start.nsPid as number, 'SIGKILL');
    const end = await g.waitFor((e) => e.event === 'session.end' && e.session === start.sandbox, 10_000);
    assert.equal(end.reason, 'sandbox-ended');
    await assertNothingLeft(g);
    await assert.rejects(driver.exec(0, 'true'), 'the connection is gone');
  } finally {
    await driver.quit().catch(() => {});
    await g.stop();
    await assertNothingLeft(g);
    g.cleanup();
  }
});
