"""exec request on one session channel, optionally with a pty and env requests.

WG_ARGS: {"command": str, "stdin"?: str (sent, then EOF), "stdinBytes"?: int (that many 'x' bytes,
then EOF), "pty"?: {"term", "cols", "rows"}, "env"?: {name: value} (sent without want-reply, as
paramiko does), "envReply"?: [[name, value], ...] (each sent WITH want-reply
on a probe channel of its own; the answers are reported)}
Prints {"stdout", "stderr", "status" (paramiko: -1 when no exit-status came), "timedOut", "envReplies"}.
"""
from channels_lib import ARGS, connect, emit, env_request, read_all

client = connect()
env_replies = {}
for name, value in ARGS.get("envReply", []):
    # paramiko closes a channel whose request failed: one probe channel per variable
    probe = client.get_transport().open_session()
    env_replies[name] = env_request(probe, name, value)
    probe.close()
chan = client.get_transport().open_session()
if ARGS.get("env"):
    chan.update_environment(ARGS["env"])
pty = ARGS.get("pty")
if pty:
    chan.get_pty(term=pty["term"], width=pty["cols"], height=pty["rows"])
chan.exec_command(ARGS["command"])
if "stdin" in ARGS:
    chan.sendall(ARGS["stdin"].encode("utf-8"))
if "stdinBytes" in ARGS:
    left = ARGS["stdinBytes"]
    while left > 0:
        n = min(left, 32768)
        chan.sendall(b"x" * n)
        left -= n
if "stdin" in ARGS or "stdinBytes" in ARGS:
    chan.shutdown_write()
stdout, stderr, status, timed_out = read_all(chan, ARGS.get("timeout", 20))
emit({"stdout": stdout, "stderr": stderr, "status": status, "timedOut": timed_out, "envReplies": env_replies})
client.close()
