// Inside the sandbox (issue 6, items 6 and 7): a user namespace per sandbox whose root is an
// unprivileged host id, players without capabilities, and a seccomp filter on every player process.
// The attacks these defences stop, run as a player would, are in test/adversarial.test.ts.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
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

/** Rows "name result errno" (errno 0 on success), as the programs below print them, by name. */
const rows = (out: string) => Object.fromEntries(out.trim().split('\n').map((l) => l.split(' ')).map(([name, r, errno]) => [name, `${r} ${errno}`]));

test('the seccomp filter denies io_uring_enter/register, request_key, the new mount API, module and kexec loading, syslog and TIOCLINUX', async () => {
  // x86_64 numbers; each must fail with EPERM (1). Without the filter most would fail otherwise:
  // io_uring_enter on fd 0 with EOPNOTSUPP, request_key with EFAULT, init_module with ENOSYS on a
  // kernel without modules; some (fsopen, kexec_load...) check a capability first and say EPERM too.
  const out = await python(
    [
      'import ctypes, fcntl, os, termios',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'calls = {"io_uring_enter": 426, "io_uring_register": 427, "request_key": 249, "move_mount": 429, "fsopen": 430, "fsconfig": 431,',
      '         "fsmount": 432, "fspick": 433, "init_module": 175, "finit_module": 313, "kexec_load": 246, "syslog": 103}',
      'for name, nr in sorted(calls.items()):',
      '    r = libc.syscall(nr, 0, 0, 0, 0, 0)',
      '    print(name, r, ctypes.get_errno() if r == -1 else 0)',
      'r = libc.syscall(103, 10, 0, 0)  # syslog(SYSLOG_ACTION_SIZE_BUFFER)',
      'print("syslog-size", r, ctypes.get_errno() if r == -1 else 0)',
      'null = os.open("/dev/null", os.O_RDONLY)',
      'for name, request in (("TIOCLINUX", 0x541C), ("TCGETS", termios.TCGETS)):',
      '    try:',
      '        fcntl.ioctl(null, request, bytes(64))',
      '        print(name, 0, 0)',
      '    except OSError as e:',
      '        print(name, -1, e.errno)',
    ].join('\n'),
  );
  const got = rows(out);
  for (const name of ['fsconfig', 'fsmount', 'fsopen', 'fspick', 'finit_module', 'init_module', 'io_uring_enter', 'io_uring_register', 'kexec_load', 'move_mount', 'request_key', 'syslog', 'syslog-size', 'TIOCLINUX']) {
    assert.equal(got[name], '-1 1', `${name}: ${got[name]}`);
  }
  // The filter matches the ioctl request, not the call: another request on the same fd reaches the
  // kernel, which says /dev/null is no terminal (ENOTTY, 25), as it would to TIOCLINUX unfiltered.
  assert.equal(got.TCGETS, '-1 25');
});

test('the filter covers the 32-bit system call ABIs: int 0x80 (i386) and x32 calls are denied alike', async (t) => {
  // No 32-bit toolchain here (no gcc-multilib): a 64-bit process enters the i386 ABI itself with
  // `int 0x80` (seccomp then sees AUDIT_ARCH_I386, as for a 32-bit program), from a page of machine
  // code: push rbx; mov eax,edi; mov ebx,esi; xchg ecx,edx; xor esi,esi; xor edi,edi; int 0x80;
  // pop rbx; movsxd rax,eax; ret. x32 calls are x86_64 calls with bit 30 set in the number.
  const out = await python(
    [
      'import ctypes, mmap, os',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)',
      'page.write(bytes.fromhex("5389f889f387d131f631ffcd805b4863c0c3"))',
      'int80 = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(page)))',
      'null = os.open("/dev/null", os.O_RDONLY)',
      'print("pid", os.getpid(), 0)',
      '# i386 numbers; ioctl is 54',
      'calls = [("getpid", 20, 0, 0), ("unshare", 310, 0, 0), ("mount", 21, 0, 0), ("keyctl", 288, 0, 0), ("request_key", 287, 0, 0),',
      '         ("bpf", 357, 0, 0), ("perf_event_open", 336, 0, 0), ("userfaultfd", 374, 0, 0), ("io_uring_setup", 425, 0, 0),',
      '         ("io_uring_enter", 426, 0, 0), ("fsopen", 430, 0, 0), ("init_module", 128, 0, 0), ("finit_module", 350, 0, 0),',
      '         ("kexec_load", 283, 0, 0), ("syslog", 103, 10, 0), ("TIOCSTI", 54, null, 0x5412), ("TIOCLINUX", 54, null, 0x541C),',
      '         ("TCGETS", 54, null, 0x5401)]',
      'for name, nr, a, b in calls:',
      '    r = int80(nr, a, b, 0)',
      '    print("i386-" + name, -1 if -4096 < r < 0 else r, -r if -4096 < r < 0 else 0)',
      'for name, nr in (("unshare", 272), ("syslog", 103), ("getpid", 39)):',
      '    r = libc.syscall(0x40000000 | nr, 0, 0, 0, 0, 0)',
      '    print("x32-" + name, r, ctypes.get_errno() if r == -1 else 0)',
    ].join('\n'),
  );
  const got = rows(out);
  if (got['i386-getpid'] === '-1 38') return t.skip('this kernel has no i386 ABI (ia32_emulation off)');
  assert.equal(got['i386-getpid'], got.pid, 'int 0x80 reaches the kernel: getpid answers');
  // unshare(0) would succeed unfiltered, and TIOCSTI/TIOCLINUX on /dev/null fail with ENOTTY as TCGETS does.
  for (const name of ['unshare', 'mount', 'keyctl', 'request_key', 'bpf', 'perf_event_open', 'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'fsopen', 'init_module', 'finit_module', 'kexec_load', 'syslog', 'TIOCSTI', 'TIOCLINUX']) {
    assert.equal(got[`i386-${name}`], '-1 1', `i386 ${name}: ${got[`i386-${name}`]}`);
  }
  assert.equal(got['i386-TCGETS'], '-1 25');
  // A kernel without the x32 ABI answers ENOSYS (38) to every x32 call; the filter answers first.
  t.diagnostic(`x32 getpid: ${got['x32-getpid']}`);
  assert.equal(got['x32-unshare'], '-1 1');
  assert.equal(got['x32-syslog'], '-1 1');
});

test('kernel interfaces in /proc are masked (/proc/kcore, /proc/sched_debug, /proc/kmsg...): /dev/null inside; dmesg fails', async (t) => {
  // The files of sandbox-init.c's MASKED list. A file this kernel lacks is absent inside as well.
  const files = ['kcore', 'kallsyms', 'keys', 'latency_stats', 'timer_list', 'timer_stats', 'sched_debug', 'kmsg', 'interrupts'];
  const out = await python(
    [
      'import json, os, stat',
      'doc = {}',
      `for name in ${JSON.stringify(files)}:`,
      '    path = "/proc/" + name',
      '    try:',
      '        st = os.stat(path)',
      '        with open(path, "rb") as f:',
      '            size = len(f.read())',
      '        doc[name] = "chr %d:%d, %d bytes" % (os.major(st.st_rdev), os.minor(st.st_rdev), size) if stat.S_ISCHR(st.st_mode) else "not masked"',
      '    except OSError as e:',
      '        doc[name] = os.strerror(e.errno)',
      'print(json.dumps(doc))',
    ].join('\n'),
  );
  const inside = JSON.parse(out) as Record<string, string>;
  for (const name of files) {
    const onHost = existsSync(`/proc/${name}`);
    if (!onHost) t.diagnostic(`/proc/${name}: not in this kernel`);
    assert.equal(inside[name], onHost ? 'chr 1:3, 0 bytes' : 'No such file or directory', `/proc/${name}`);
  }
  assert.ok(files.some((name) => existsSync(`/proc/${name}`)), 'the host has some of them: the check checked something');

  const dmesg = await ssh(gw, 'level0', ['--', 'dmesg']);
  assert.notEqual(dmesg.code, 0);
  assert.equal(dmesg.stdout, '');
  assert.match(dmesg.stderr, /Operation not permitted/);

  // Masked directories: empty and read-only, whatever they hold on the host.
  const dirs = ['asound', 'acpi', 'scsi'].filter((name) => existsSync(`/proc/${name}`));
  for (const name of dirs) {
    const r = await ssh(gw, 'level0', ['--', `ls -A /proc/${name} | wc -l; touch /proc/${name}/x 2>&1 | grep -c 'Read-only file system'`]);
    assert.equal(r.stdout, '0\n1\n', `/proc/${name}: ${r.stdout} ${r.stderr}`);
  }
  t.diagnostic(`masked directories on this kernel: ${dirs.join(', ') || 'none'}`);
});

test('/dev/shm is the sandbox\'s own, sticky and writable by players, and counts against the writable cap', async () => {
  const r = await ssh(gw, 'level0', ['--', 'stat -c %a /dev/shm; echo x > /dev/shm/mine && cat /dev/shm/mine; head -c 80m /dev/zero 2>&1 >/dev/shm/big | grep -c "No space left"']);
  assert.equal(r.stdout, '1777\nx\n1\n', r.stderr);
});
