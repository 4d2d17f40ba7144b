"""Shared bits of the channels_*.py paramiko clients (test/channels.test.ts).

Every client reads WG_PORT, WG_USER, WG_PASSWORD and WG_ARGS (JSON) from the environment,
connects to 127.0.0.1 and prints ONE JSON document on stdout.
"""
import json
import os
import re
import sys
import time

import paramiko
from paramiko.common import cMSG_CHANNEL_REQUEST
from paramiko.message import Message

ARGS = json.loads(os.environ.get("WG_ARGS") or "{}")


def connect():
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1",
        port=int(os.environ["WG_PORT"]),
        username=os.environ["WG_USER"],
        password=os.environ["WG_PASSWORD"],
        look_for_keys=False,
        allow_agent=False,
        timeout=20,
        banner_timeout=20,
        auth_timeout=20,
    )
    return client


def emit(doc):
    sys.stdout.write(json.dumps(doc))
    sys.stdout.flush()


def text(data):
    return data.decode("utf-8", errors="replace")


def env_request(chan, name, value):
    """An env request WITH want-reply (paramiko's own sends none): True if the server accepted it."""
    m = Message()
    m.add_byte(cMSG_CHANNEL_REQUEST)
    m.add_int(chan.remote_chanid)
    m.add_string("env")
    m.add_boolean(True)
    m.add_string(name)
    m.add_string(value)
    chan._event_pending()
    chan.transport._send_user_message(m)
    try:
        chan._wait_for_event()
        return True
    except paramiko.SSHException:
        return False


def read_all(chan, timeout=20.0):
    """Reads stdout and stderr apart until the server closes the channel.

    Returns (stdout, stderr, exit status or None, timed out?). paramiko keeps exit_status at -1
    when the server sent exit-signal instead of exit-status (it ignores exit-signal).
    """
    out, err = [], []
    deadline = time.time() + timeout
    while True:
        if chan.recv_ready():
            out.append(chan.recv(65536))
        elif chan.recv_stderr_ready():
            err.append(chan.recv_stderr(65536))
        elif chan.closed:
            # data always precedes the close: drain what arrived between the checks above
            while chan.recv_ready():
                out.append(chan.recv(65536))
            while chan.recv_stderr_ready():
                err.append(chan.recv_stderr(65536))
            break
        elif time.time() >= deadline:
            break
        else:
            time.sleep(0.01)
    timed_out = not chan.closed
    status = chan.exit_status if chan.exit_status_ready() else None
    return text(b"".join(out)), text(b"".join(err)), status, timed_out


class Expecter:
    """Reads a channel into a buffer and waits for regular expressions in what arrives."""

    def __init__(self, chan):
        self.chan = chan
        self.buf = b""
        chan.settimeout(0.1)

    def expect(self, pattern, timeout):
        """Returns (output up to and including the match, matched?); the rest stays buffered."""
        rx = re.compile(pattern.encode("utf-8"), re.S)
        deadline = time.time() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                seg, self.buf = self.buf[: m.end()], self.buf[m.end():]
                return text(seg), True
            if time.time() >= deadline or self.chan.closed:
                seg, self.buf = self.buf, b""
                return text(seg), False
            try:
                data = self.chan.recv(65536)
                if data == b"":
                    if self.chan.eof_received:
                        seg, self.buf = self.buf, b""
                        return text(seg), False
                self.buf += data
            except OSError:
                pass
