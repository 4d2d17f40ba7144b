#!/usr/bin/python3
"""An interactive paramiko session (pty-req + shell) that is left alone or typed into, for the idle
timeout and maximum session length (test/timeouts.test.ts). WG_ARGS:
  {"typeEvery": seconds or null (send a newline that often), "limit": seconds to wait at most}
Reads until the server closes the channel. Prints one JSON document: all output, and the seconds
(since the shell was opened) at which each notice appeared and the connection ended.
"""
import time

import paramiko

from channels_lib import ARGS, connect, emit, text

NOTICES = {"warning": b"session ends in", "ended": b"*** Session ended"}


def main():
    client = connect()
    transport = client.get_transport()
    chan = transport.open_session(timeout=20)
    chan.get_pty(term="xterm", width=100, height=30)
    chan.invoke_shell()
    chan.settimeout(0.1)
    start = time.monotonic()
    type_every = ARGS.get("typeEvery")
    next_key = start + type_every if type_every else None
    limit = float(ARGS.get("limit", 30))
    out = b""
    seen = {}
    closed_at = None
    while time.monotonic() - start < limit:
        now = time.monotonic()
        if next_key is not None and now >= next_key:
            try:
                chan.send(b"\n")
            except (OSError, EOFError, paramiko.SSHException):
                pass
            next_key += type_every
        try:
            data = chan.recv(65536)
        except TimeoutError:
            data = None
        except OSError:
            data = b""
        if data is not None:
            if not data:
                closed_at = time.monotonic() - start
                break
            out += data
            for name, needle in NOTICES.items():
                if name not in seen and needle in out:
                    seen[name] = round(time.monotonic() - start, 2)
    # The connection itself ends too (a disconnect, not only the channel).
    deadline = time.monotonic() + 5
    while transport.is_active() and time.monotonic() < deadline:
        time.sleep(0.05)
    emit({"output": text(out), "notices": seen, "closedAt": closed_at and round(closed_at, 2),
          "disconnected": not transport.is_active()})
    client.close()


if __name__ == "__main__":
    main()
