#!/usr/bin/python3
"""N sequential interactive logins with paramiko, timed (run by bench/login-latency.ts).

One interpreter does every login, so Python's start-up and paramiko's import are not measured.
Per login, all times in ms from the start of the TCP connect:
  tcp     socket connected
  kex     key exchange done (Transport.start_client returned)
  auth    auth_password accepted
  open    session channel open
  pty     pty-req accepted
  shell   shell request accepted
  first   first byte received on the channel (the gateway's welcome text, or the shell's output)
  prompt  the shell prompt ("$ " or "# " at the end of what was received)
then the connection is closed. Environment: WG_PORT, WG_USER, WG_PASSWORD, WG_COUNT, WG_NODELAY (1: TCP_NODELAY on the client).
Prints one JSON object per login on stdout, then {"done": true}.
"""
import json
import os
import re
import socket
import sys
import time

import paramiko

PROMPT = re.compile(rb"[$#] $")
TIMEOUT = 15.0
# Diagnostic only: WG_NODELAY=1 turns off Nagle on the client socket (paramiko leaves it on).
NODELAY = os.environ.get("WG_NODELAY") == "1"


def login(port, user, password):
    ms = lambda: (time.perf_counter() - t0) * 1000.0  # noqa: E731
    r = {}
    t0 = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    if NODELAY:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    r["tcp"] = ms()
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=TIMEOUT)
        r["kex"] = ms()
        transport.auth_password(user, password)
        r["auth"] = ms()
        chan = transport.open_session(timeout=TIMEOUT)
        r["open"] = ms()
        chan.get_pty(term="xterm", width=80, height=24)
        r["pty"] = ms()
        chan.invoke_shell()
        r["shell"] = ms()
        chan.settimeout(TIMEOUT)
        buf = chan.recv(1)
        if not buf:
            raise RuntimeError("channel closed before any output")
        r["first"] = ms()
        while not PROMPT.search(buf):
            data = chan.recv(65536)
            if not data:
                raise RuntimeError("channel closed before the prompt: %r" % buf[-200:])
            buf += data
        r["prompt"] = ms()
    finally:
        transport.close()
    r["total"] = ms()
    return r


def main():
    port = int(os.environ["WG_PORT"])
    user = os.environ.get("WG_USER", "level0")
    password = os.environ.get("WG_PASSWORD", "level0")
    count = int(os.environ.get("WG_COUNT", "100"))
    for i in range(count):
        try:
            r = login(port, user, password)
            r["i"] = i
        except Exception as e:  # report and go on: the summary counts failures
            r = {"i": i, "error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(r) + "\n")
        sys.stdout.flush()
    sys.stdout.write(json.dumps({"done": True}) + "\n")


if __name__ == "__main__":
    main()
