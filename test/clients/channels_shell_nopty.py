"""A shell request WITHOUT a pty: the commands go to the login shell's stdin, then EOF.

WG_ARGS: {"input": str, "eof"?: bool (default true)}
Prints {"stdout", "stderr", "status", "timedOut"}.
"""
from channels_lib import ARGS, connect, emit, read_all

client = connect()
chan = client.get_transport().open_session()
chan.invoke_shell()
chan.sendall(ARGS["input"].encode("utf-8"))
if ARGS.get("eof", True):
    chan.shutdown_write()
stdout, stderr, status, timed_out = read_all(chan, ARGS.get("timeout", 20))
emit({"stdout": stdout, "stderr": stderr, "status": status, "timedOut": timed_out})
client.close()
