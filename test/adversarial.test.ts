// The adversarial suite of issue 6, for the attacks a player runs INSIDE a sandbox: each test runs the
// attack (against a second, concurrent player where there is one to hit), asserts that it fails or
// stays confined to the attacker's own sandbox, and that nothing of either sandbox is left afterwards.
// Covered elsewhere, not repeated here: fork bomb, memory bomb, disk and inode fill (attacks.test.ts);
// `ssh -L`/`-W` to the host's loopback and to link-local metadata (forwarding.test.ts); same-level
// players seeing each other's processes and files, a stray `kill -KILL -1` from the other player, the
// game's own setuid programs and /etc/demo_pass/level3 (isolation.test.ts).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type ssh2 from 'ssh2';
import { instanceName } from '../src/cgroup/detect.js';
import { ssh } from './helpers/clients.js';
import type { LogEntry, TestGateway } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';
import { ssh2Login, ssh2Logout, type Ssh2Run } from './helpers/real-clients.js';
import { sharedGateway } from './helpers/shared-gateway.js';

let gw: TestGateway;
sharedGateway((g) => (gw = g));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const uidOf = (level: string) => 12000 + Number(level.slice('level'.length));
const PTY = { rows: 24, cols: 200, term: 'xterm' };

// ---------------------------------------------------------------------------------------------
// Players: ssh2 logins, each with its own sandbox (as the gateway logged it)

interface Player {
  user: string;
  client: ssh2.Client;
  sandbox: LogEntry;
}

async function login(user: string): Promise<Player> {
  const known = new Set(gw.events('sandbox.start').map((e) => e.sandbox));
  const client = await ssh2Login(gw, user);
  const sandbox = await gw.waitFor((e) => e.event === 'sandbox.start' && !known.has(e.sandbox));
  return { user, client, sandbox };
}

/** Logs in as each of `users` at once, runs `attack`, logs out, and proves every sandbox of theirs is gone. */
async function withPlayers(users: string[], attack: (players: Player[]) => Promise<void>): Promise<void> {
  const players: Player[] = [];
  try {
    for (const user of users) players.push(await login(user));
    assert.equal(new Set(players.map((p) => p.sandbox.pidns)).size, players.length, 'one sandbox per login');
    await attack(players);
  } finally {
    for (const p of players) await ssh2Logout(p.client);
  }
  for (const p of players) await gw.waitFor((e) => e.event === 'session.end' && e.session === p.sandbox.sandbox);
  await assertNothingLeft(gw);
}

interface Running {
  output: () => string;
  write: (data: string) => void;
  end: () => void;
  done: Promise<Ssh2Run>;
}

/** Starts `command` on an exec channel (with a pty if asked) and returns at once. */
function start(p: Player, command: string, { pty = false } = {}): Promise<Running> {
  return new Promise((resolve, reject) => {
    p.client.exec(command, pty ? { pty: PTY } : {}, (err, stream) => {
      if (err) return reject(err);
      const run: Ssh2Run = { stdout: '', stderr: '', exit: undefined };
      stream.on('data', (d: Buffer) => (run.stdout += d.toString('utf8')));
      stream.stderr.on('data', (d: Buffer) => (run.stderr += d.toString('utf8')));
      stream.on('exit', (...args: unknown[]) => (run.exit = args));
      const done = new Promise<Ssh2Run>((res) => stream.on('close', () => res(run)));
      resolve({ output: () => run.stdout, write: (data) => stream.write(data), end: () => stream.end(), done });
    });
  });
}

/** Runs `command` to its end (stdin at end of file). */
async function run(p: Player, command: string, options: { pty?: boolean } = {}): Promise<Ssh2Run> {
  const r = await start(p, command, options);
  r.end();
  return r.done;
}

async function until(what: string, cond: () => boolean, withinMs = 10_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!cond()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A shell word holding `text` as is. */
const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** The shell command running python3 (the host's, from the sandbox's /usr) on `code`. */
const python = (code: string) => `python3 -c ${quote(PRELUDE + code)}`;

/** What every python attack starts with: raw syscalls through ctypes, errno names, one RESULT line. */
const PRELUDE = String.raw`
import ctypes, errno, json, os, subprocess, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def errname(e=None):
    return errno.errorcode.get(ctypes.get_errno() if e is None else e, "errno?")
def result(doc):
    print("RESULT " + json.dumps(doc), flush=True)
`;

/** The JSON document of the RESULT line a python attack printed. */
function result<T = Record<string, unknown>>(r: Ssh2Run): T {
  const m = /^RESULT (.*?)\r?$/m.exec(r.stdout);
  assert.ok(m, `no RESULT line in: ${r.stdout}\nstderr: ${r.stderr}`);
  return JSON.parse(m[1]) as T;
}

// ---------------------------------------------------------------------------------------------
// The host's view

/** The demo's levels other than level0 (those with a generated password, kept in the state dir). */
function otherLevels(): string[] {
  return Object.keys(JSON.parse(readFileSync(join(gw.stateDir, 'games/demo/passwords.json'), 'utf8')) as Record<string, string>).filter((l) => l !== 'level0');
}

/** Host pids in the pid namespace `pidns` whose command line is `cmd`. */
function hostPids(pidns: unknown, cmd: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) !== pidns) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() === cmd) found.push(Number(entry));
    } catch {
      // ended while we looked
    }
  }
  return found;
}

/** A file of a sandbox's cgroup, in whichever hierarchy holds it (v1 or v2 layout). */
function cgroupFile(sandbox: unknown, controller: string, files: string[]): string {
  const instance = instanceName(gw.stateDir);
  for (const file of files) {
    for (const dir of [join('/sys/fs/cgroup', controller), '/sys/fs/cgroup']) {
      const path = join(dir, 'wargate', instance, String(sandbox), file);
      if (existsSync(path)) return path;
    }
  }
  assert.fail(`no ${files.join(' or ')} for sandbox ${String(sandbox)}`);
}

// ---------------------------------------------------------------------------------------------

test("kill -9 -1 kills only the player's own processes: another sandbox lives on, the gateway still logs players in", { timeout: 30_000 }, async () => {
  await withPlayers(['level0', 'level0'], async ([a, b]) => {
    // Same level on both sides: in a shared pid namespace, the same uid would be fair game.
    const sleepB = Number((await run(b, 'sleep 4321 </dev/null >/dev/null 2>&1 & echo $!')).stdout);
    const sleepA = Number((await run(a, 'sleep 4322 </dev/null >/dev/null 2>&1 & echo $!')).stdout);
    const busyA = await start(a, 'sleep 300; echo survived');
    await until("A's foreground sleep", () => hostPids(a.sandbox.pidns, 'sleep 300').length === 1);

    const kill = await run(a, 'kill -9 -1; echo "kill=$?"');
    assert.equal(kill.stdout, 'kill=0\n', kill.stderr);

    // A: its other channel died of SIGKILL, its background sleep is gone; its sandbox (PID 1 is
    // root, out of the player's reach) still runs commands.
    const busy = await busyA.done;
    assert.equal(busy.exit?.[1], 'SIGKILL', `A's busy channel: ${JSON.stringify(busy)}`);
    assert.doesNotMatch(busy.stdout, /survived/);
    const afterA = await run(a, `kill -0 ${sleepA} 2>&1; ps -eo user=,args=`);
    assert.match(afterA.stdout, /No such process/);
    assert.doesNotMatch(afterA.stdout, /sleep/, afterA.stdout);
    assert.match(afterA.stdout, /^root +init/m, 'PID 1 of A lives on');
    assert.ok(existsSync(`/proc/${a.sandbox.nsPid as number}`), "A's PID 1 is alive on the host");

    // B: untouched, and still answering on its connection.
    const afterB = await run(b, `kill -0 ${sleepB} && echo alive`);
    assert.equal(afterB.stdout, 'alive\n', afterB.stderr);
    assert.equal(hostPids(b.sandbox.pidns, 'sleep 4321').length, 1, "B's sleep on the host");

    // The gateway: a new login gets a shell.
    const fresh = await ssh(gw, 'level1', ['--', 'echo fresh-login'], undefined, gw.password('level1'));
    assert.equal(fresh.stdout, 'fresh-login\n', fresh.stderr);
  });
});

/** PTRACE_ATTACH then PTRACE_DETACH, as a python function: "attached" or the errno's name. */
const ATTACH = String.raw`
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
def attach(pid):
    if libc.ptrace(16, pid, None, None) == 0:
        os.waitpid(pid, 0)
        libc.ptrace(17, pid, None, None)
        return "attached"
    return errname()
def uids(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Uid:"):
            return [int(x) for x in line.split()[1:]]
def cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return None
def procs():
    return {int(p): cmdline(p) for p in os.listdir("/proc") if p.isdigit()}
`;

test("ptrace cannot reach another player's process: its pids do not exist in the attacker's sandbox, foreign pids fail", { timeout: 30_000 }, async (t) => {
  await withPlayers(['level0', 'level0'], async ([a, b]) => {
    // B's target gets a pid well above anything A has used, so A cannot hit one of its own by chance.
    const pidB = Number((await run(b, 'for i in $(seq 80); do /bin/true; done; sleep 4323 </dev/null >/dev/null 2>&1 & echo $!')).stdout);
    assert.ok(pidB > 80, `B's sleep: ${pidB}`);
    await until("B's sleep on the host", () => hostPids(b.sandbox.pidns, 'sleep 4323').length === 1);
    const [hostPidB] = hostPids(b.sandbox.pidns, 'sleep 4323');

    const r = await run(
      a,
      python(
        ATTACH +
          String.raw`
targets = [${pidB}, ${hostPidB}]
mine = os.getuid()
child = subprocess.Popen(["sleep", "60"])
own = {pid for pid in procs() if uids(pid)[0] == mine}
doc = {"visible": procs(), "control": attach(child.pid), "targets": {str(t): attach(t) for t in targets}, "sweep": {}, "attachedForeign": []}
# Every pid up to 4096, and B's two numbers: whatever is not A's own must refuse.
for pid in list(range(1, 4097)) + targets:
    if pid in own:
        continue
    how = attach(pid)
    doc["sweep"][how] = doc["sweep"].get(how, 0) + 1
    if how == "attached":
        doc["attachedForeign"].append(pid)
child.kill()
result(doc)
`,
      ) +
        `; for p in ${pidB} ${hostPidB}; do gdb -q -batch -p $p 2>&1 | grep -i -e ptrace -e attaching; done`,
    );
    const doc = result<{ visible: Record<string, string | null>; control: string; targets: Record<string, string>; sweep: Record<string, number>; attachedForeign: number[] }>(r);
    // ptrace works at all (players debug their own programs) ...
    assert.equal(doc.control, 'attached', 'attaching to its own child (control)');
    // ... but B's sleep is not among the processes A can see, under either number ...
    assert.ok(!Object.values(doc.visible).some((cmd) => cmd?.includes('sleep 4323')), `A sees B's sleep: ${JSON.stringify(doc.visible)}`);
    assert.ok(!(String(pidB) in doc.visible) || doc.visible[pidB] !== 'sleep 4323');
    // ... and no pid that is not A's own can be attached to.
    assert.deepEqual(doc.attachedForeign, []);
    for (const [pid, how] of Object.entries(doc.targets)) assert.ok(how === 'ESRCH' || how === 'EPERM', `attach ${pid}: ${how}`);
    assert.equal(doc.targets[pidB], 'ESRCH', "B's pid does not exist in A's sandbox");
    assert.deepEqual(Object.keys(doc.sweep).sort(), doc.sweep.EPERM ? ['EPERM', 'ESRCH'] : ['ESRCH'], JSON.stringify(doc.sweep));
    t.diagnostic(`PTRACE_ATTACH on pids 1..4096 and B's ${pidB} (host ${hostPidB}), A's own left out: ${JSON.stringify(doc.sweep)}`);
    // gdb says the same.
    assert.equal((r.stdout.match(/ptrace: (No such process|Operation not permitted)/g) ?? []).length, 2, r.stdout);
    // B's sleep was never stopped or killed.
    assert.equal((await run(b, `kill -0 ${pidB} && grep State /proc/${pidB}/status`)).stdout, 'State:\tS (sleeping)\n');
  });
});

test('ptrace of a setuid program running as another level in the same sandbox fails with EPERM', { timeout: 30_000 }, async () => {
  await withPlayers(['level2'], async ([p]) => {
    const r = await run(
      p,
      python(
        ATTACH +
          String.raw`
runas = os.path.expanduser("~/run-as-level3")
target = subprocess.Popen([runas, "sleep", "60"])
deadline = time.time() + 5
while cmdline(target.pid) != "sleep 60" and time.time() < deadline:
    time.sleep(0.01)
own = subprocess.Popen(["sleep", "60"])
doc = {"me": os.getuid(), "target": cmdline(target.pid), "targetUids": uids(target.pid), "attach": attach(target.pid), "control": attach(own.pid)}
try:
    open(f"/proc/{target.pid}/mem", "rb").read(1)
    doc["mem"] = "read"
except OSError as e:
    doc["mem"] = errname(e.errno)
gdb = subprocess.run(["gdb", "-q", "-batch", "-p", str(target.pid)], capture_output=True, text=True, timeout=20)
doc["gdb"] = [l for l in (gdb.stdout + gdb.stderr).splitlines() if "ptrace" in l.lower()]
doc["alive"] = open(f"/proc/{target.pid}/status").read().split("State:")[1].split()[0]
own.kill()
subprocess.run([runas, "/bin/sh", "-c", f"kill -9 {target.pid}"])
target.wait()
result(doc)
`,
      ),
    );
    const doc = result<{ me: number; target: string; targetUids: number[]; attach: string; control: string; mem: string; gdb: string[]; alive: string }>(r);
    assert.equal(doc.me, uidOf('level2'));
    // Precondition: the game's setuid program really runs the target as level3 (real, effective, saved, fs).
    assert.equal(doc.target, 'sleep 60');
    assert.deepEqual(doc.targetUids, Array(4).fill(uidOf('level3')), 'run-as-level3 elevates (else this test proves nothing)');
    assert.equal(doc.control, 'attached', 'level2 attaches to its own process (control)');
    assert.equal(doc.attach, 'EPERM');
    assert.ok(doc.mem === 'EACCES' || doc.mem === 'EPERM', `/proc/PID/mem of level3's process: ${doc.mem}`);
    assert.deepEqual(doc.gdb, ['ptrace: Operation not permitted.']);
    assert.equal(doc.alive, 'S', 'the target was never stopped');
  });
});

test('an abstract unix socket of one sandbox is unreachable from another (ECONNREFUSED); the same name works within the sandbox', { timeout: 30_000 }, async () => {
  const name = `wargate-adv-${randomBytes(4).toString('hex')}`;
  const connect = String.raw`
import socket
def connect(name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect("\0" + name)
        return "connected: " + s.recv(100).decode()
    except OSError as e:
        return errname(e.errno)
    finally:
        s.close()
def listed(name):
    return "@" + name in open("/proc/net/unix").read()
`;
  await withPlayers(['level0', 'level0'], async ([a, b]) => {
    // B: a server on the abstract name, left running in the background (its parent answers once it listens).
    const server = await run(
      b,
      python(
        connect +
          String.raw`
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0${name}")
s.listen(8)
if os.fork():
    result({"listening": listed("${name}")})
    os._exit(0)
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
os.setsid()
while True:
    c, _ = s.accept()
    c.sendall(b"hello from B")
    c.close()
`,
      ),
    );
    assert.deepEqual(result(server), { listening: true });

    // A: nothing listens under that name in A's network namespace; A may even take the name itself.
    const fromA = result(
      await run(
        a,
        python(
          connect +
            String.raw`
doc = {"connect": connect("${name}"), "listed": listed("${name}")}
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.bind("\0${name}")
    doc["bind"] = "bound"
except OSError as e:
    doc["bind"] = errname(e.errno)
result(doc)
`,
        ),
      ),
    );
    assert.deepEqual(fromA, { connect: 'ECONNREFUSED', listed: false, bind: 'bound' });

    // Control: within B's sandbox, the name answers.
    const fromB = result(await run(b, python(connect + `result({"connect": connect("${name}")})`)));
    assert.deepEqual(fromB, { connect: 'connected: hello from B' });
  });
});

test('System V IPC (message queue, shared memory, semaphores) and /dev/shm are private to each sandbox', { timeout: 30_000 }, async () => {
  const key = 0x7a000000 + randomBytes(2).readUInt16BE();
  const tag = randomBytes(4).toString('hex');
  const ipc = String.raw`
IPC_CREAT, IPC_NOWAIT = 0o1000, 0o4000
KEY = ${key}
class Msg(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 64)]
for fn in (libc.msgget, libc.shmget, libc.semget):
    fn.restype = ctypes.c_int
libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
def ids(flags):
    out = {}
    for what, call in (("msg", lambda: libc.msgget(KEY, flags)), ("shm", lambda: libc.shmget(KEY, 4096, flags)), ("sem", lambda: libc.semget(KEY, 1, flags))):
        i = call()
        out[what] = i if i >= 0 else errname()
    return out
def listed():
    return sum(1 for kind in ("msg", "shm", "sem") for line in open(f"/proc/sysvipc/{kind}").readlines()[1:] if line.split() and int(line.split()[0]) == KEY)
`;
  await withPlayers(['level0', 'level0'], async ([a, b]) => {
    // B: world-accessible objects under a known key, a message in the queue, a world-readable /dev/shm file.
    const made = result<{ ids: Record<string, number | string>; sent: number; listed: number }>(
      await run(
        b,
        python(
          ipc +
            String.raw`
made = ids(IPC_CREAT | 0o666)
m = Msg(1, b"secret of B")
sent = libc.msgsnd(made["msg"], ctypes.byref(m), 64, IPC_NOWAIT)
fd = os.open("/dev/shm/adv-${tag}", os.O_CREAT | os.O_WRONLY, 0o666)
os.write(fd, b"shm of B")
os.fchmod(fd, 0o666)
result({"ids": made, "sent": sent, "listed": listed()})
`,
        ) + `; ipcs | grep -c ${'0x' + key.toString(16)}`,
      ),
    );
    for (const what of ['msg', 'shm', 'sem']) assert.equal(typeof made.ids[what], 'number', `B created its ${what}: ${JSON.stringify(made)}`);
    assert.equal(made.sent, 0);
    assert.equal(made.listed, 3);

    // A: the key names nothing; ipcs lists nothing at all; /dev/shm is empty.
    const seenA = await run(
      a,
      python(
        ipc +
          String.raw`
found = {}
try:
    found["devshm"] = os.listdir("/dev/shm")
    open("/dev/shm/adv-${tag}")
    found["shmfile"] = "opened"
except OSError as e:
    found["shmfile"] = errname(e.errno)
result({"ids": ids(0), "listed": listed(), **found})
`,
      ) + "; ipcs | grep -c '^0x'",
    );
    assert.deepEqual(result(seenA), { ids: { msg: 'ENOENT', shm: 'ENOENT', sem: 'ENOENT' }, listed: 0, devshm: [], shmfile: 'ENOENT' });
    assert.match(seenA.stdout, /\n0\n$/, `A's ipcs lists objects: ${seenA.stdout}`);

    // Control: within B's sandbox the same key finds B's objects and B's message.
    const seenB = result<{ ids: Record<string, number | string>; received: string }>(
      await run(
        b,
        python(
          ipc +
            String.raw`
found = ids(0)
m = Msg()
n = libc.msgrcv(found["msg"], ctypes.byref(m), 64, 0, IPC_NOWAIT)
result({"ids": found, "received": m.mtext.decode() if n > 0 else errname()})
`,
        ),
      ),
    );
    assert.deepEqual(seenB.ids, made.ids);
    assert.equal(seenB.received, 'secret of B');
  });
});

test('hostname cannot be changed by a player; the other sandbox and the host keep theirs', { timeout: 30_000 }, async (t) => {
  const hostBefore = hostname();
  await withPlayers(['level0', 'level0'], async ([a, b]) => {
    const r = await run(
      a,
      [
        'hostname adv-evil 2>&1; echo "hostname=$?"',
        'echo adv-evil 2>&1 >/proc/sys/kernel/hostname; echo "proc=$?"',
        python(String.raw`
import socket
try:
    socket.sethostname("adv-evil")
    result({"sethostname": "ok"})
except OSError as e:
    result({"sethostname": errname(e.errno)})
`),
        // In a user and uts namespace of its own (if the kernel lets it make one: see the user
        // namespace test below), a rename could only reach that new namespace.
        'unshare -Ur --uts sh -c "hostname adv-evil-ns && hostname" 2>&1; echo "userns=$?"',
        'echo "now=$(hostname)"',
      ].join('; '),
    );
    assert.match(r.stdout, /you must be root to change the host name\nhostname=1\n/, r.stdout);
    assert.match(r.stdout, /(Permission denied|Read-only file system)\nproc=1\n/, r.stdout);
    assert.deepEqual(result(r), { sethostname: 'EPERM' });
    t.diagnostic(`hostname in a user+uts namespace of A's own: ${/[^\n]*\n?userns=\d+/.exec(r.stdout)?.[0].replace(/\n/g, ' | ')}`);
    assert.match(r.stdout, /now=wargate-demo\n$/);
    assert.equal((await run(b, 'hostname')).stdout, 'wargate-demo\n');
  });
  assert.equal(hostname(), hostBefore, "the host's hostname");
});

test("another sandbox's files are out of reach; within a sandbox, another level's home and password file are closed", { timeout: 30_000 }, async () => {
  const tag = randomBytes(4).toString('hex');
  await withPlayers(['level0', 'level1'], async ([a, b]) => {
    // B (level1) opens everything it can to the world.
    const planted = await run(
      b,
      `chmod 755 ~ && for d in ~ /tmp /var/tmp /dev/shm; do echo "secret of B" >$d/adv-${tag} && chmod 644 $d/adv-${tag} || exit 1; done; cat ~/adv-${tag} /dev/shm/adv-${tag}`,
    );
    assert.equal(planted.stdout, 'secret of B\nsecret of B\n', planted.stderr);

    const seen = await run(
      a,
      [
        `for f in /home/level1/adv-${tag} /tmp/adv-${tag} /var/tmp/adv-${tag} /dev/shm/adv-${tag}; do cat $f 2>&1; done`,
        'echo "==mode $(stat -c %a /home/level1)"',
        `echo "==found $(find / \\( -path /proc -o -path /usr \\) -prune -o -name 'adv-${tag}' -print 2>/dev/null | wc -l)"`,
        // Within A's own sandbox: other levels' homes and password files, by name ...
        'ls /home/level1 2>&1; cat /home/level1/inhere/.nothing-to-see-here /etc/demo_pass/level1 2>&1',
        // ... and everything readable under /home and /etc/demo_pass, whatever its name.
        'echo ==readable; find /home /etc/demo_pass -type f -readable 2>/dev/null | LC_ALL=C sort',
      ].join('; '),
    );
    const out = seen.stdout;
    assert.doesNotMatch(out, /secret of B/);
    // /home/level1 in A's sandbox is the game's (mode 750), not B's (755); the rest does not exist in A.
    assert.match(out, new RegExp(`^cat: /home/level1/adv-${tag}: Permission denied$`, 'm'));
    for (const dir of ['/tmp', '/var/tmp', '/dev/shm']) assert.match(out, new RegExp(`^cat: ${dir}/adv-${tag}: No such file or directory$`, 'm'));
    assert.match(out, /^==mode 750$/m);
    assert.match(out, /^==found 0$/m);
    assert.match(out, /^ls: cannot open directory '\/home\/level1': Permission denied$/m);
    assert.match(out, /^cat: \/home\/level1\/inhere\/\.nothing-to-see-here: Permission denied$/m);
    assert.match(out, /^cat: \/etc\/demo_pass\/level1: Permission denied$/m);
    for (const level of otherLevels()) assert.ok(!out.includes(gw.password(level)), `${level}'s password leaked`);
    const readable = out.split('==readable\n')[1].trim().split('\n');
    assert.deepEqual(readable, ['/etc/demo_pass/level0', '/home/level0/.bash_logout', '/home/level0/.bashrc', '/home/level0/.profile', '/home/level0/readme']);
  });
});

test("TIOCSTI cannot reach another player's terminal (only the sandbox's own exist), and TIOCLINUX is denied (EPERM)", { timeout: 30_000 }, async (t) => {
  await withPlayers(['level0', 'level0'], async ([a, b]) => {
    // B: a terminal that reports whatever arrives on it until STOP.
    const reader = await start(
      b,
      python(String.raw`
import select
print("B-READY", flush=True)
got = b""
deadline = time.time() + 20
while b"STOP" not in got and time.time() < deadline:
    if select.select([0], [], [], 0.1)[0]:
        got += os.read(0, 1024)
result({"tty": os.ttyname(0), "got": got.decode(errors="replace")})
`),
      { pty: true },
    );
    await until('B reading its terminal', () => reader.output().includes('B-READY'));

    // A: every other terminal it can name, then its own, then the console ioctl.
    const r = await run(
      a,
      python(String.raw`
import fcntl, select, termios
TIOCLINUX = 0x541C
text = b"INJECTED-BY-A\n"
def inject(fd):
    try:
        for c in text:
            fcntl.ioctl(fd, termios.TIOCSTI, bytes([c]))
        return "ok"
    except OSError as e:
        return errname(e.errno)
own = os.ttyname(0)
doc = {"own": own, "pts": sorted(os.listdir("/dev/pts")), "others": {}}
for path in [f"/dev/pts/{n}" for n in range(64)] + ["/dev/console", "/dev/tty0", "/dev/tty1", "/dev/tty7", "/dev/vcs", "/dev/vcsa"]:
    if path == own:
        continue
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        doc["others"][path] = "opened, TIOCSTI " + inject(fd)
        os.close(fd)
    except OSError as e:
        doc["others"][path] = errname(e.errno)
doc["stiOwn"] = inject(0)
doc["readBack"] = os.read(0, 100).decode() if select.select([0], [], [], 0.5)[0] else ""
for name, fd in (("linuxOwn", 0), ("linuxDevTty", os.open("/dev/tty", os.O_RDWR))):
    try:
        fcntl.ioctl(fd, TIOCLINUX, bytes([11]))  # TIOCL_GETFGCONSOLE
        doc[name] = "ok"
    except OSError as e:
        doc[name] = errname(e.errno)
result(doc)
`),
      { pty: true },
    );
    reader.write('STOP\n');
    const fromB = result<{ tty: string; got: string }>(await reader.done);
    const doc = result<{ own: string; pts: string[]; others: Record<string, string>; stiOwn: string; readBack: string; linuxOwn: string; linuxDevTty: string }>(r);

    // A's devpts holds A's own terminal only, though B's terminal is open at the same time (and is
    // even called the same, /dev/pts/0, in B's own devpts); no other terminal or console opens.
    assert.equal(doc.own, '/dev/pts/0');
    assert.equal(fromB.tty, '/dev/pts/0');
    assert.deepEqual(doc.pts, ['0', 'ptmx']);
    for (const [path, how] of Object.entries(doc.others)) assert.equal(how, 'ENOENT', `${path}: ${how}`);
    // Into its own terminal, the kernel (dev.tty.legacy_tiocsti) or a filter decides; either way the
    // text stays on A's terminal, read back by A itself, and never reaches B.
    t.diagnostic(`TIOCSTI into A's own terminal: ${doc.stiOwn}; read back by A: ${JSON.stringify(doc.readBack)}`);
    if (doc.stiOwn === 'ok') assert.equal(doc.readBack, 'INJECTED-BY-A\n');
    else assert.ok(['EPERM', 'EIO'].includes(doc.stiOwn) && doc.readBack === '', JSON.stringify(doc));
    assert.equal(fromB.got.replace(/\r/g, ''), 'STOP\n', "B's terminal received only what B's client typed");
    // TIOCLINUX is the virtual console's: a pty would answer ENOTTY, but the seccomp filter
    // (seccomp-policy.c) denies the request itself, before any terminal sees it.
    assert.deepEqual([doc.linuxOwn, doc.linuxDevTty], ['EPERM', 'EPERM'], 'TIOCLINUX on the own pty and on /dev/tty');
  });
});

test("setuid-root programs of the host's /usr do not elevate inside (nosuid): each runs with the level's ids", { timeout: 30_000 }, async (t) => {
  const hostSetuid = execFileSync('find', ['/usr', '-perm', '-4000', '-user', 'root', '-type', 'f'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).sort();
  const hostAllSetuid = execFileSync('find', ['/usr', '-perm', '-4000', '-type', 'f'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).sort();
  assert.ok(hostSetuid.includes('/usr/bin/su'), `the host's setuid-root programs: ${hostSetuid.join(' ')}`);
  await withPlayers(['level0'], async ([p]) => {
    const r = await run(
      p,
      python(String.raw`
# Every setuid file, whoever owns it: inside a user namespace the host's root shows as nobody.
found = subprocess.run(["find", "/usr", "-perm", "-4000", "-type", "f"], capture_output=True, text=True).stdout.split()
owners = sorted({os.stat(path).st_uid for path in found})
ran = {}
# stdin: a pipe nobody writes, so programs that ask for a password wait instead of failing at once.
# Each program's ids are read while it runs, or as a zombie (not yet waited for): the credentials it
# got from execve, before any privilege drop of its own could hide a saved uid of 0.
hold_r, hold_w = os.pipe()
for path in sorted(found):
    try:
        p = subprocess.Popen([path], stdin=hold_r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as e:
        ran[path] = {"exec": errname(e.errno)}  # not executable by others (e.g. dbus-daemon-launch-helper, 4754)
        continue
    ids = {}
    for line in open(f"/proc/{p.pid}/status"):
        if line.startswith(("Uid:", "Gid:", "CapEff:")):
            k, v = line.split(":", 1)
            ids[k] = v.split()
    try:
        p.kill()
    except OSError as e:
        ids["kill"] = errname(e.errno)
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        ids["wait"] = "still running"
    ran[path] = ids
usr = [l.split() for l in open("/proc/self/mountinfo") if l.split()[4] == "/usr"]
result({"found": sorted(found), "owners": owners, "ran": ran, "usrOptions": usr[0][5] if usr else None, "id": os.getuid()})
`) +
        `; su -c 'id -u' root </dev/null 2>&1; echo "su=$?"; mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>&1; echo "mount=$?"; passwd -d level0 2>&1; echo "passwd=$?"; echo "id=$(id -u)"`,
    );
    const doc = result<{ found: string[]; owners: number[]; ran: Record<string, Record<string, string[] | string>>; usrOptions: string; id: number }>(r);
    const uid = String(uidOf('level0'));
    assert.deepEqual(doc.found, hostAllSetuid, 'the same /usr, the same setuid programs');
    assert.match(doc.usrOptions, /(^|,)ro(,|$)/);
    assert.match(doc.usrOptions, /(^|,)nosuid(,|$)/);
    for (const [path, ids] of Object.entries(doc.ran)) {
      // A program the level may not even execute (root:messagebus 4754 dbus-daemon-launch-helper) cannot elevate it.
      if (ids.exec !== undefined) {
        assert.equal(ids.exec, 'EACCES', `${path}: ${JSON.stringify(ids)}`);
        continue;
      }
      assert.deepEqual(ids.Uid, [uid, uid, uid, uid], `${path}: uids ${JSON.stringify(ids)}`);
      assert.deepEqual(ids.Gid, [uid, uid, uid, uid], `${path}: gids ${JSON.stringify(ids)}`);
      assert.deepEqual(ids.CapEff, ['0000000000000000'], `${path}: capabilities ${JSON.stringify(ids)}`);
      assert.equal(ids.kill, undefined, `${path} could not be killed by the player: ${JSON.stringify(ids)}`);
    }
    for (const path of ['/usr/bin/su', '/usr/bin/passwd', '/usr/bin/mount']) {
      if (hostSetuid.includes(path)) assert.ok(Array.isArray(doc.ran[path]?.Uid), `${path} ran: ${JSON.stringify(doc.ran[path])}`);
    }
    t.diagnostic(`ran ${Object.keys(doc.ran).length} setuid programs (owned by uid ${doc.owners.join(', ')} as seen inside) as uid ${uid}: ${Object.keys(doc.ran).join(' ')}`);
    const tail = r.stdout.slice(r.stdout.indexOf('\n', r.stdout.indexOf('RESULT ')) + 1);
    assert.doesNotMatch(tail, /^0$/m, `su ran id as root: ${tail}`);
    assert.match(tail, /su=1\n/);
    assert.match(tail, /must be superuser to use mount\.\n[^\n]*\nmount=32\n/);
    assert.match(tail, /passwd=[1-9]/);
    assert.match(tail, new RegExp(`id=${uid}\n$`));
  });
});

test('cgroupfs is out of reach: no /sys, no cgroup file writable, a cgroup mount refused; the limits hold', { timeout: 30_000 }, async (t) => {
  await withPlayers(['level0'], async ([p]) => {
    const memFile = cgroupFile(p.sandbox.sandbox, 'memory', ['memory.max', 'memory.limit_in_bytes']);
    const pidsFile = cgroupFile(p.sandbox.sandbox, 'pids', ['pids.max']);
    const before = [readFileSync(memFile, 'utf8'), readFileSync(pidsFile, 'utf8')];
    const r = await run(
      p,
      python(String.raw`
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
doc = {"sys": "exists" if os.path.exists("/sys") else "absent", "writes": {}}
try:
    os.makedirs("/sys/fs/cgroup")
    doc["mkdir"] = "made"
except OSError as e:
    doc["mkdir"] = errname(e.errno)
# Every cgroup file of its own cgroups, under every layout a host may use (v1, v2, hybrid), as
# /proc/self/cgroup names them.
paths = set()
for line in open("/proc/self/cgroup"):
    _, controllers, path = line.rstrip("\n").split(":", 2)
    bases = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] + ["/sys/fs/cgroup/" + c.replace("name=", "") for c in controllers.split(",") if c]
    for base in bases:
        for f in ("memory.max", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "pids.max", "cgroup.procs", "tasks", "cgroup.kill", "cgroup.freeze", "freezer.state", "cgroup.subtree_control"):
            paths.add(os.path.normpath(base + path + "/" + f))
            paths.add(base + "/" + f)
for path in sorted(paths):
    try:
        with open(path, "w") as fh:
            fh.write("max\n")
        doc["writes"][path] = "written"
    except OSError as e:
        doc["writes"][path] = errname(e.errno)
os.makedirs("/tmp/cg", exist_ok=True)
for fstype, data in ((b"cgroup2", None), (b"cgroup", b"memory"), (b"cgroup", b"pids")):
    rc = libc.mount(b"none", b"/tmp/cg", fstype, 0, data)
    doc["mount " + fstype.decode() + ("" if data is None else " " + data.decode())] = "mounted" if rc == 0 else errname()
result(doc)
`) +
        // In a user, mount and cgroup namespace of its own (if the kernel lets it make one), the
        // player may mount a cgroup2 view: it must still write nothing.
        `; unshare -Urm --cgroup sh -c 'mount -t cgroup2 none /tmp/cg && echo "==mounted $(ls /tmp/cg | wc -l) files" && for f in /tmp/cg/memory.max /tmp/cg/pids.max /tmp/cg/cgroup.procs /tmp/cg/cgroup.subtree_control /tmp/cg/cgroup.max.descendants; do echo max 2>/dev/null >$f && echo "==WRITTEN $f"; done' 2>&1; echo "==userns=$?"`,
    );
    const doc = result<{ sys: string; mkdir: string; writes: Record<string, string> } & Record<string, string>>(r);
    assert.equal(doc.sys, 'absent');
    assert.ok(['EACCES', 'EROFS', 'EPERM'].includes(doc.mkdir), `mkdir /sys/fs/cgroup: ${doc.mkdir}`);
    assert.ok(Object.keys(doc.writes).length > 10);
    assert.deepEqual(Object.entries(doc.writes).filter(([, how]) => how !== 'ENOENT'), [], 'cgroup files that exist inside');
    for (const m of ['mount cgroup2', 'mount cgroup memory', 'mount cgroup pids']) assert.equal(doc[m], 'EPERM', `${m}: ${doc[m]}`);
    assert.doesNotMatch(r.stdout, /==WRITTEN/, r.stdout);
    t.diagnostic(`cgroup2 in a namespace of its own: ${(r.stdout.match(/==(mounted.*|userns=\d+)/g) ?? []).join(', ')}`);

    // The limits are what they were, and the memory limit still bites.
    assert.deepEqual([readFileSync(memFile, 'utf8'), readFileSync(pidsFile, 'utf8')], before);
    const bomb = await run(p, `python3 -c 'a = []\nwhile True: a.append(bytearray(8 << 20))'; echo "bomb=$?"`);
    assert.match(bomb.stdout, /bomb=137\n/, bomb.stderr);
  });
});

/** Mount and namespace syscalls through ctypes: 0 or the errno's name. */
const SYSCALLS = String.raw`
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
CLONE = {"NEWNS": 0x00020000, "NEWCGROUP": 0x02000000, "NEWUTS": 0x04000000, "NEWIPC": 0x08000000, "NEWUSER": 0x10000000, "NEWPID": 0x20000000, "NEWNET": 0x40000000}
def call(rc):
    return 0 if rc == 0 else errname()
`;

test('mount, umount, unshare -m and unshare -n fail for the player; its mount table is unchanged', { timeout: 30_000 }, async () => {
  await withPlayers(['level0'], async ([p]) => {
    const r = await run(
      p,
      python(
        SYSCALLS +
          String.raw`
before = open("/proc/self/mountinfo").read()
os.makedirs("/tmp/x", exist_ok=True)
doc = {
    "mount tmpfs": call(libc.mount(b"none", b"/tmp/x", b"tmpfs", 0, None)),
    "bind /": call(libc.mount(b"/", b"/tmp/x", None, 0x1000, None)),
    "remount /usr rw": call(libc.mount(None, b"/usr", None, 0x20 | 0x1000, None)),
    "umount /proc/sys": call(libc.umount2(b"/proc/sys", 2)),
    "umount /usr": call(libc.umount2(b"/usr", 2)),
}
for name in ("NEWNS", "NEWNET", "NEWPID", "NEWIPC", "NEWUTS", "NEWCGROUP"):
    doc["unshare " + name] = call(libc.unshare(CLONE[name]))
doc["unchanged"] = open("/proc/self/mountinfo").read() == before
result(doc)
`,
      ) +
        '; mount -t tmpfs none /tmp/x 2>&1; echo "==mount=$?"; unshare -m true 2>&1; echo "==m=$?"; unshare -n true 2>&1; echo "==n=$?"; grep -c " /tmp/x " /proc/self/mountinfo',
    );
    const doc = result(r);
    assert.deepEqual(doc, {
      'mount tmpfs': 'EPERM',
      'bind /': 'EPERM',
      'remount /usr rw': 'EPERM',
      'umount /proc/sys': 'EPERM',
      'umount /usr': 'EPERM',
      'unshare NEWNS': 'EPERM',
      'unshare NEWNET': 'EPERM',
      'unshare NEWPID': 'EPERM',
      'unshare NEWIPC': 'EPERM',
      'unshare NEWUTS': 'EPERM',
      'unshare NEWCGROUP': 'EPERM',
      unchanged: true,
    });
    assert.match(r.stdout, /must be superuser to use mount\.\n[^\n]*\n==mount=32\n/);
    assert.match(r.stdout, /unshare: unshare failed: Operation not permitted\n==m=1\n/);
    assert.match(r.stdout, /unshare: unshare failed: Operation not permitted\n==n=1\n0\n$/);
  });
});

test(
  'creating a user namespace (unshare -U) fails for the player, so none of the above can be retried as root of one',
  {
    // Before the seccomp filter, the kernel allowed it: `unshare -Ur` made the player root of a new
    // namespace, where it could mount tmpfs and a cgroup2 view.
    timeout: 30_000,
  },
  async (t) => {
    await withPlayers(['level0'], async ([p]) => {
      const r = await run(
        p,
        python(
          SYSCALLS +
            String.raw`
pid = os.fork()
if pid == 0:
    os._exit(0 if libc.unshare(CLONE["NEWUSER"]) == 0 else 1)
_, status = os.waitpid(pid, 0)
result({"unshare NEWUSER": "made" if os.waitstatus_to_exitcode(status) == 0 else "refused"})
`,
        ) + `; unshare -U true 2>&1; echo "==U=$?"; unshare -Urm sh -c 'mount -t tmpfs none /tmp && echo "==mounted as $(id -u) in a user namespace"' 2>&1`,
      );
      t.diagnostic(r.stdout.replace(/\n/g, ' | '));
      assert.deepEqual(result(r), { 'unshare NEWUSER': 'refused' });
      assert.match(r.stdout, /unshare: unshare failed: Operation not permitted\n==U=1\n/);
      assert.doesNotMatch(r.stdout, /==mounted/);
    });
  },
);
