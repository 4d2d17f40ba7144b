#!/usr/bin/python3
"""Holds N idle interactive shells open from one process (run by bench/idle-memory.ts).

Protocol on stdin/stdout, one JSON object per line out, one word per line in:
  out {"event": "started", "pid": P}      paramiko imported, nothing opened yet
  in  go
  ... opens N connections one after the other: password login, pty-req, shell, and waits until each
      shell's prompt has arrived; the Transports (and their reader threads) stay open, idle ...
  out {"event": "ready", "opened": n, "failed": [...], "ms": total}
  in  close
  out {"event": "closed"}                 every Transport closed
Environment: WG_PORT, WG_USER, WG_PASSWORD, WG_SESSIONS.
"""
import json
import os
import re
import socket
import sys
import time

import paramiko

PROMPT = re.compile(rb"[$#] $")
TIMEOUT = 30.0


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def open_shell(port, user, password):
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=TIMEOUT)
        transport.auth_password(user, password)
        chan = transport.open_session(timeout=TIMEOUT)
        chan.get_pty(term="xterm", width=80, height=24)
        chan.invoke_shell()
        chan.settimeout(TIMEOUT)
        buf = b""
        while not PROMPT.search(buf):
            data = chan.recv(65536)
            if not data:
                raise RuntimeError("channel closed before the prompt: %r" % buf[-200:])
            buf += data
        return transport, chan
    except Exception:
        transport.close()
        raise


def main():
    port = int(os.environ["WG_PORT"])
    user = os.environ.get("WG_USER", "level0")
    password = os.environ.get("WG_PASSWORD", "level0")
    count = int(os.environ.get("WG_SESSIONS", "100"))
    say({"event": "started", "pid": os.getpid()})
    if sys.stdin.readline().strip() != "go":
        return
    held = []
    failed = []
    t0 = time.perf_counter()
    for i in range(count):
        try:
            held.append(open_shell(port, user, password))
        except Exception as e:
            failed.append("#%d %s: %s" % (i, type(e).__name__, e))
    say({"event": "ready", "opened": len(held), "failed": failed, "ms": (time.perf_counter() - t0) * 1000.0})
    sys.stdin.readline()  # "close", or EOF if the parent went away
    for transport, _chan in held:
        transport.close()
    say({"event": "closed"})


if __name__ == "__main__":
    main()
