// Inside the sandbox (issue 6, items 6 and 7): a user namespace per sandbox whose root is an
// unprivileged host id, players without capabilities, and a seccomp filter on every player process.
// The attacks these defences stop, run as a player would, are in test/adversarial.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SANDBOX_ROOT_ID } from '../src/sandbox/ids.js';
import { ssh } from './helpers/clients.js';
import type { TestGateway } from './helpers/gateway.js';
import { sharedGateway } from './helpers/shared-gateway.js';

let gw: TestGateway;
sharedGateway((g) => (gw = g));

/** Runs a python3 program inside a level0 sandbox; returns its stdout. */
async function python(program: string): Promise<string> {
  const r = await ssh(gw, 'level0', ['--', `python3 -c '${program}'`]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

test('root inside is an unprivileged host id; level users keep their ids; players hold no capability', async () => {
  const known = new Set(gw.events('sandbox.start').map((e) => e.sandbox));
  const client = ssh(gw, 'level0', ['--', 'cat /proc/self/uid_map /proc/self/gid_map; grep -E "^Cap(Prm|Eff)" /proc/self/status; stat -c "%U %u" /etc/passwd ~; ps -o user= -p 1; sleep 1']);
  const started = await gw.waitFor((e) => e.event === 'sandbox.start' && !known.has(e.sandbox));
  // Seen from the host while it runs: the sandbox's PID 1 (root inside) is SANDBOX_ROOT_ID.
  const hostUid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${started.nsPid}/status`, 'utf8'))![1];
  const r = await client;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(Number(hostUid), SANDBOX_ROOT_ID);
  const map = `0 ${SANDBOX_ROOT_ID} 1\n1 1 65535\n`.replace(/ /g, '\\s+');
  assert.match(r.stdout.replace(/^ +/gm, ''), new RegExp(`^${map}${map}`));
  assert.match(r.stdout, /CapPrm:\s+0{16}\nCapEff:\s+0{16}\n/);
  assert.match(r.stdout, /^root 0\nlevel0 12000\nroot\n$/m, 'the layer\'s root files and PID 1 show as root inside');
});

test('the seccomp filter denies keyrings, bpf, perf, userfaultfd, io_uring, mounts, namespaces and TIOCSTI', async () => {
  // x86_64 syscall numbers; each call must fail with EPERM (1), whatever its arguments.
  const out = await python(
    [
      'import ctypes, fcntl, os, termios',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'calls = {"keyctl": 250, "add_key": 248, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,',
      '         "mount": 165, "umount2": 166, "pivot_root": 155, "unshare": 272, "setns": 308, "open_tree": 428, "fsopen": 430}',
      'for name, nr in sorted(calls.items()):',
      '    r = libc.syscall(nr, 0, 0, 0, 0, 0)',
      '    print(name, r, ctypes.get_errno())',
      'r = libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)  # clone(CLONE_NEWUSER | SIGCHLD)',
      'print("clone-newuser", r, ctypes.get_errno())',
      'r = libc.syscall(435, 0, 0)  # clone3: ENOSYS (38), so libc falls back to clone',
      'print("clone3", r, ctypes.get_errno())',
      'try:',
      '    fcntl.ioctl(os.open("/dev/null", os.O_RDONLY), termios.TIOCSTI, b"x")',
      'except OSError as e:',
      '    print("TIOCSTI", -1, e.errno)',
    ].join('\n'),
  );
  const rows = Object.fromEntries(out.trim().split('\n').map((l) => l.split(' ')).map(([name, r, errno]) => [name, `${r} ${errno}`]));
  for (const name of ['keyctl', 'add_key', 'bpf', 'perf_event_open', 'userfaultfd', 'io_uring_setup', 'mount', 'umount2', 'pivot_root', 'unshare', 'setns', 'open_tree', 'fsopen', 'clone-newuser', 'TIOCSTI']) {
    assert.equal(rows[name], '-1 1', `${name}: ${rows[name]}`);
  }
  assert.equal(rows.clone3, '-1 38');

  // Ordinary work goes on under the filter: threads, and ptrace of one's own child (gdb, strace).
  const ordinary = await python(
    [
      'import ctypes, os, signal, threading, time',
      'libc = ctypes.CDLL(None, use_errno=True)',
      't = threading.Thread(target=print, args=("thread",)); t.start(); t.join()',
      'pid = os.fork()',
      'if pid == 0:',
      '    time.sleep(5); os._exit(0)',
      'print("ptrace", libc.ptrace(16, pid, 0, 0))  # PTRACE_ATTACH',
      'os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)',
    ].join('\n'),
  );
  assert.equal(ordinary, 'thread\nptrace 0\n');
});
