"""The session channel limit of one connection (the gateway's maxSessions).

WG_ARGS: {"max": N}. Opens N session channels, each running `cat` after a ready line, then one
more; checks that the connection and an open channel still work; closes one channel and opens
another in its place (a command runs on it); then tries one more again.
Prints {"opened", "refused": {"code", "text"} or null, "echo", "closedStatus", "replaced", "refusedAgain"}.
"""
import paramiko

from channels_lib import ARGS, Expecter, emit, read_all
from file_transfer_lib import connect


def try_open(transport):
    """None if a session channel opened (it is closed again at once), else the refusal."""
    try:
        transport.open_session(timeout=10).close()
        return None
    except paramiko.ChannelException as e:
        return {"code": e.code, "text": e.text}


client = connect()
transport = client.get_transport()
channels = []
for i in range(ARGS["max"]):
    chan = transport.open_session(timeout=10)
    chan.exec_command("echo ready-%d; exec cat" % i)
    if Expecter(chan).expect("ready-%d\n" % i, 10)[1]:
        channels.append(chan)
doc = {"opened": len(channels), "refused": try_open(transport)}

first = channels[0]
first.sendall(b"still here\n")
doc["echo"] = Expecter(first).expect("still here\n", 10)[0]
first.shutdown_write()
doc["closedStatus"] = read_all(first)[2]
first.close()

replacement = transport.open_session(timeout=10)
replacement.exec_command("echo replaced")
doc["replaced"] = read_all(replacement)[0]
replacement.close()
# The replacement is closed too: the open ones are N - 1 again, and then N with this one.
last = transport.open_session(timeout=10)
last.exec_command("exec cat")
doc["refusedAgain"] = try_open(transport)

emit(doc)
client.close()
