"""A pty session driven step by step: each step may resize the terminal (window-change), send
bytes, then waits for a regular expression in what comes back.

WG_ARGS: {"term", "cols", "rows", "command"?: str (exec with the pty; a shell otherwise),
          "steps": [{"resize"?: [cols, rows], "pause"?: s, "send"?: str, "expect": regex, "timeout"?: s}],
          "closeTimeout"?: s}
Stops at the first step that times out. After the steps, reads until the channel closes.
Prints {"steps": [{"output", "matched", "seconds"}], "rest", "status", "timedOut"}.
"""
import time

from channels_lib import ARGS, Expecter, connect, emit, read_all

client = connect()
chan = client.get_transport().open_session()
chan.get_pty(term=ARGS["term"], width=ARGS["cols"], height=ARGS["rows"])
if ARGS.get("command") is not None:
    chan.exec_command(ARGS["command"])
else:
    chan.invoke_shell()
ex = Expecter(chan)
steps = []
ok = True
for step in ARGS["steps"]:
    started = time.time()
    if "resize" in step:
        chan.resize_pty(width=step["resize"][0], height=step["resize"][1])
    if "pause" in step:
        time.sleep(step["pause"])
    if "send" in step:
        chan.sendall(step["send"].encode("utf-8"))
    output, matched = ex.expect(step["expect"], step.get("timeout", 10))
    steps.append({"output": output, "matched": matched, "seconds": round(time.time() - started, 3)})
    if not matched:
        ok = False
        break
rest, status, timed_out = "", None, False
if ok:
    chan.settimeout(None)
    rest, _err, status, timed_out = read_all(chan, ARGS.get("closeTimeout", 10))
    rest = ex.buf.decode("utf-8", errors="replace") + rest
emit({"steps": steps, "rest": rest, "status": status, "timedOut": timed_out})
client.close()
