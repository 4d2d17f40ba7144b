"""Several channels of one connection share one sandbox; another connection has its own.

Connection 1, channel A: writes its pid to /tmp, prints its namespaces, stays alive (sleep).
Connection 1, channel B (while A runs): reads A's file, checks A's process is visible, prints its
namespaces, then kills A. Connection 2 (opened while connection 1 is alive): looks for A's file
and prints its namespaces.
Prints {"a": {...}, "b": {...}, "other": {...}} with stdout, stderr and status of each channel.
"""
from channels_lib import ARGS, Expecter, connect, emit, read_all

NS = "for n in pid mnt net uts ipc; do echo $n=$(readlink /proc/self/ns/$n); done"

first = connect()
a = first.get_transport().open_session()
a.exec_command("echo $$ > /tmp/channel-a.pid; " + NS + "; echo A-READY; exec sleep 60")
ex = Expecter(a)
a_out, ready = ex.expect("A-READY\n", 10)

b = first.get_transport().open_session()
b.exec_command(
    "pid=$(cat /tmp/channel-a.pid); echo pidfile=$pid; "
    "kill -0 $pid && echo a-visible; "
    "echo a-cmd=$(tr '\\0' ' ' </proc/$pid/cmdline); " + NS
)
b_stdout, b_stderr, b_status, b_to = read_all(b)

second = connect()
c = second.get_transport().open_session()
c.exec_command("if [ -e /tmp/channel-a.pid ]; then echo pidfile-exists; else echo pidfile-absent; fi; " + NS)
c_stdout, c_stderr, c_status, c_to = read_all(c)
second.close()

k = first.get_transport().open_session()
k.exec_command("kill -TERM $(cat /tmp/channel-a.pid)")
k_stdout, k_stderr, k_status, k_to = read_all(k)
a_rest, a_stderr, a_status, a_to = read_all(a)
first.close()

emit({
    "a": {"stdout": a_out + ex.buf.decode() + a_rest, "ready": ready, "stderr": a_stderr, "status": a_status, "timedOut": a_to},
    "b": {"stdout": b_stdout, "stderr": b_stderr, "status": b_status, "timedOut": b_to},
    "other": {"stdout": c_stdout, "stderr": c_stderr, "status": c_status, "timedOut": c_to},
    "kill": {"stdout": k_stdout, "stderr": k_stderr, "status": k_status},
})
