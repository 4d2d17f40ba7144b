// Isolation between sandboxes and from the host: two players on the same level at once see only their
// own processes and files and cannot signal each other; the host's processes, /root, users, state dir
// and network interfaces are not visible; setuid binaries of the game elevate; ~ and /tmp reset at logout.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ssh } from './helpers/clients.js';
import { REPO, TestGateway, type LogEntry } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';
import { SessionDriver } from './helpers/session-driver.js';
import { parse } from 'yaml';

let gw: TestGateway;
before(async () => (gw = await TestGateway.start()));
after(async () => {
  try {
    await gw.stop();
    await assertNothingLeft(gw);
  } finally {
    gw.cleanup();
  }
});



/** `echo ==NAME` separated sections of one command's output. */
function sections(output: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const part of output.split(/^==/m).slice(1)) {
    const nl = part.indexOf('\n');
    result[part.slice(0, nl)] = part.slice(nl + 1);
  }
  return result;
}

/** `ps -eo pid=,args=` output as [pid, args] rows. */
function psRows(output: string): [number, string][] {
  return output
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const m = /^\s*(\d+)\s+(.*)$/.exec(l);
      assert.ok(m, `unexpected ps line: ${l}`);
      return [Number(m[1]), m[2]];
    });
}

/** Host pids whose pid namespace is `pidns`, with their command lines. */
function hostProcessesIn(pidns: string): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) !== pidns) continue;
      found.push({ pid: Number(entry), cmd: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() });
    } catch {
      // ended while we looked
    }
  }
  return found;
}

test('two logins on the same level see only their own processes and files, and cannot signal each other', { timeout: 60_000 }, async () => {
  const known = new Set(gw.events('sandbox.start').map((e) => e.sandbox));
  const driver = await SessionDriver.start(gw, [
    { user: 'level0', password: gw.password('level0') },
    { user: 'level0', password: gw.password('level0') },
  ]);
  try {
    const A = 0;
    const B = 1;
    const tag = randomBytes(4).toString('hex');
    // Two sandboxes, with distinct pid and mount namespaces, exist for the two logins.
    const deadline = Date.now() + 10_000;
    let mine: LogEntry[] = [];
    while (mine.length < 2 && Date.now() < deadline) {
      mine = gw.events('sandbox.start').filter((e) => !known.has(e.sandbox));
      if (mine.length < 2) await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(mine.length, 2, 'two sandboxes started');
    assert.notEqual(mine[0].pidns, mine[1].pidns);
    assert.notEqual(mine[0].mntns, mine[1].mntns);

    assert.equal((await whoami()).join(','), 'level0,level0');

    // A: private files, then a long-lived process whose pid is well above anything B has used, so
    // that B cannot hit one of its own processes by accident when it tries A's pid.
    await driver.exec(A, `echo a >~/only-a-${tag} && echo a >/tmp/only-a-${tag}`);
    await driver.exec(B, `echo b >~/only-b-${tag} && echo b >/tmp/only-b-${tag}`);
    const started = await driver.exec(A, 'for i in $(seq 60); do /bin/true; done; sleep 1234 </dev/null >/dev/null 2>&1 & echo $!');
    const pidA = Number(started.stdout.trim());
    assert.ok(Number.isInteger(pidA) && pidA > 1, `pid of A's sleep: ${started.stdout}`);

    // A sees its sleep under that pid; on the host it lives in A's pid namespace only.
    const psA = psRows((await driver.exec(A, 'ps -eo pid=,args=')).stdout);
    assert.ok(psA.some(([pid, args]) => pid === pidA && args === 'sleep 1234'), `A's ps: ${JSON.stringify(psA)}`);
    const sandboxOfA = await sandboxWithSleep();
    const sandboxOfB = mine.find((e) => e !== sandboxOfA)!;
    assert.deepEqual(hostProcessesIn(sandboxOfB.pidns as string).filter((p) => p.cmd === 'sleep 1234'), []);

    // B: no sleep 1234, nothing under A's pid, none of A's files.
    const psB = psRows((await driver.exec(B, 'ps -eo pid=,args=')).stdout);
    assert.ok(!psB.some(([, args]) => args.includes('sleep 1234')), `B's ps shows A's process: ${JSON.stringify(psB)}`);
    assert.ok(!psB.some(([pid]) => pid === pidA), `B has a process under A's pid ${pidA}: ${JSON.stringify(psB)}`);
    const filesB = (await driver.exec(B, 'ls -A ~ /tmp')).stdout;
    assert.ok(!filesB.includes(`only-a-${tag}`), `B sees A's files: ${filesB}`);
    assert.ok(filesB.includes(`only-b-${tag}`), `B's own files: ${filesB}`);
    const filesA = (await driver.exec(A, 'ls -A ~ /tmp')).stdout;
    assert.ok(!filesA.includes(`only-b-${tag}`), `A sees B's files: ${filesA}`);
    assert.equal(filesA.split(`only-a-${tag}`).length - 1, 2, `A's own files in ~ and /tmp: ${filesA}`);

    // B tries to signal A's pid (same uid: on a shared pid namespace this would succeed).
    const killB = await driver.exec(
      B,
      `if [ -e /proc/${pidA} ]; then echo "pid ${pidA} exists in B"; exit 9; fi
       kill -0 ${pidA}; echo "kill0=$?"; kill -KILL ${pidA}; echo "kill9=$?"`,
    );
    assert.equal(killB.stdout, 'kill0=1\nkill9=1\n', `B's kill: ${JSON.stringify(killB)}`);
    assert.match(killB.stderr, /No such process/);
    // And the broadest signal B can send: every process it may signal. A's sleep must survive it.
    const killAll = await driver.exec(B, 'kill -KILL -1; echo "killall=$?"');
    assert.match(killAll.stdout, /killall=/);

    const aliveA = await driver.exec(A, `kill -0 ${pidA} && echo alive`);
    assert.equal(aliveA.stdout, 'alive\n');
    assert.ok(
      hostProcessesIn(sandboxOfA.pidns as string).some((p) => p.cmd === 'sleep 1234'),
      "A's sleep still runs on the host after B's kill attempts",
    );
  } finally {
    await driver.quit();
  }
  for (const id of gw.events('sandbox.start').filter((e) => !known.has(e.sandbox)).map((e) => e.sandbox)) {
    await gw.waitFor((e) => e.event === 'session.end' && e.session === id);
  }
  await assertNothingLeft(gw);

  async function whoami(): Promise<string[]> {
    return [(await driver.exec(0, 'id -un')).stdout.trim(), (await driver.exec(1, 'id -un')).stdout.trim()];
  }

  /** The sandbox.start entry of the sandbox in which a `sleep 1234` runs (polled on the host). */
  async function sandboxWithSleep(): Promise<LogEntry> {
    const candidates = gw.events('sandbox.start').filter((e) => !known.has(e.sandbox));
    const until = Date.now() + 5000;
    for (;;) {
      const hits = candidates.filter((e) => hostProcessesIn(e.pidns as string).some((p) => p.cmd === 'sleep 1234'));
      if (hits.length === 1) return hits[0];
      assert.ok(Date.now() < until, `sleep 1234 found in ${hits.length} sandboxes`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
});

test('the host is not visible: processes, /root, users, state dir, network interfaces, kernel interfaces', { timeout: 60_000 }, async () => {
  const hostRoot = readdirSync('/root');
  const hostUsers = readFileSync('/etc/passwd', 'utf8').split('\n').filter(Boolean).map((l) => l.split(':')[0]);
  const hostIfaces = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).filter((l) => l.trim()).map((l) => l.split(':')[0].trim());
  assert.ok(hostUsers.length > 8 && hostIfaces.some((i) => i !== 'lo'), 'the host has users and interfaces to hide');

  // A live login (paramiko), so the host side of its sandbox can be looked at while it runs.
  const known = new Set(gw.events('sandbox.start').map((e) => e.sandbox));
  const driver = await SessionDriver.start(gw, [{ user: 'level0', password: gw.password('level0') }]);
  let s: Record<string, string>;
  let init: string;
  let sandbox: LogEntry;
  try {
    sandbox = await gw.waitFor((e) => e.event === 'sandbox.start' && !known.has(e.sandbox));
    // The sandbox's init as the host sees it (host pid nsPid), read while the sandbox lives.
    init = readFileSync(`/proc/${sandbox.nsPid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    const r = await driver.exec(
      0,
      [
        'echo ==ps; ps -eo pid=,args=',
        'echo ==proc; ls /proc | grep -c "^[0-9]"',
        'echo ==root; ls -A /root 2>&1; echo "status=$?"',
        'echo ==passwd; cat /etc/passwd',
        'echo ==net; cat /proc/net/dev',
        `echo ==state; ls ${gw.stateDir} 2>&1; echo "status=$?"`,
        `echo ==repo; ls ${REPO} 2>&1; echo "status=$?"`,
        'echo ==masked; for f in kallsyms keys timer_list; do wc -c </proc/$f; done; ls -A /sys | wc -l',
        "echo ==ro; awk '$5 == \"/proc/sys\" { print $6 }' /proc/self/mountinfo",
        'echo ==end',
      ].join('; '),
    );
    assert.equal(r.status, 0, r.stderr);
    s = sections(r.stdout);
  } finally {
    await driver.quit();
  }
  await gw.waitFor((e) => e.event === 'session.end' && e.session === sandbox.sandbox);

  // Processes: PID 1 is the sandbox's init (the very process the host knows as its nsPid), then this
  // command; nothing of the host (gateway, nsenter/unshare/setpriv helpers, the host's init).
  const ps = psRows(s.ps);
  assert.ok(ps.length <= 6, `too many processes visible: ${s.ps}`);
  assert.deepEqual(ps.find(([pid]) => pid === 1), [1, init], s.ps);
  assert.ok(ps.some(([, args]) => args === 'ps -eo pid=,args='), s.ps);
  const hostGateway = readFileSync(`/proc/${gw.proc.pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  const hostInit = readFileSync('/proc/1/cmdline', 'utf8').replace(/\0/g, ' ').trim();
  assert.ok(!ps.some(([, args]) => args === hostGateway || args === hostInit || /\bnode\b|bin\/wargate|nsenter|unshare|setpriv/.test(args)), s.ps);
  assert.ok(Number(s.proc) <= 8, `/proc lists ${s.proc.trim()} processes`);

  // /root: the sandbox's own, closed to the level user; none of the host's entries show.
  assert.match(s.root, /Permission denied/);
  assert.match(s.root, /status=2/);
  for (const name of hostRoot) assert.ok(!s.root.split(/\s+/).includes(name), `host /root entry ${name} visible`);

  // Users: the game's only.
  const users = s.passwd.split('\n').filter(Boolean).map((l) => l.split(':')[0]);
  const demo = parse(readFileSync(join(REPO, 'games/demo/game.yaml'), 'utf8')) as { levels: { user: string }[] };
  assert.deepEqual(users, ['root', ...demo.levels.map((l) => l.user), 'nobody']);
  assert.ok(hostUsers.some((u) => !users.includes(u)), 'the host has users the sandbox does not show');

  // Network: loopback only.
  const ifaces = s.net.split('\n').slice(2).filter((l) => l.trim()).map((l) => l.split(':')[0].trim());
  assert.deepEqual(ifaces, ['lo']);

  // The gateway's state dir and the code of the gateway (and its games) do not exist inside.
  assert.match(s.state, /No such file or directory\nstatus=2\n/);
  assert.match(s.repo, /No such file or directory\nstatus=2\n/);

  // Kernel interfaces: symbol addresses, keys and timers read as empty, /sys is empty, /proc/sys read-only.
  assert.equal(s.masked, '0\n0\n0\n0\n');
  assert.match(s.ro, /^ro,/);
  await assertNothingLeft(gw);
});

test('setuid binaries of the game elevate; password files are closed to other levels', { timeout: 60_000 }, async () => {
  const r = await ssh(
    gw,
    'level2',
    [
      '--',
      'echo ==id; ./run-as-level3 id -un; echo ==pass; ./run-as-level3 cat /etc/demo_pass/level3; echo ==direct; cat /etc/demo_pass/level3 2>&1; echo "status=$?"; echo ==end',
    ],
    undefined,
    gw.password('level2'),
  );
  assert.equal(r.code, 0, r.stderr);
  const s = sections(r.stdout);
  assert.equal(s.id, 'level3\n');
  assert.equal(s.pass, `${gw.password('level3')}\n`);
  assert.match(s.direct, /^cat: \/etc\/demo_pass\/level3: Permission denied\nstatus=1\n$/);
  assert.ok(!s.direct.includes(gw.password('level3')));
  await assertNothingLeft(gw);
});

test('home and /tmp reset at the next login', { timeout: 60_000 }, async () => {
  const tag = randomBytes(4).toString('hex');
  const first = await ssh(gw, 'level0', [
    '--',
    `echo home >~/mark-${tag} && echo tmp >/tmp/mark-${tag} && echo tampered >>~/readme && cat ~/mark-${tag} /tmp/mark-${tag} && tail -n1 ~/readme`,
  ]);
  assert.equal(first.stdout, 'home\ntmp\ntampered\n', first.stderr);
  await assertNothingLeft(gw);

  const second = await ssh(gw, 'level0', ['--', `ls -A ~ /tmp; echo ==readme; cat ~/readme`]);
  assert.equal(second.code, 0, second.stderr);
  assert.ok(!second.stdout.includes(`mark-${tag}`), `files of the last login survived: ${second.stdout}`);
  const readme = second.stdout.split('==readme\n')[1];
  assert.equal(readme, `Well done. The password for level1 is:\n${gw.password('level1')}\n`);
  await assertNothingLeft(gw);
});
