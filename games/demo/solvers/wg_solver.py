"""What the demo's solvers share: a paramiko login with the credentials `wargate check` passes in
WG_HOST, WG_PORT, WG_USER and WG_PASSWORD, a command run over an exec channel, an interactive
shell read up to a pattern, and the shell lines that let ssh and git log in from inside a sandbox."""
import os
import re
import sys
import time

import paramiko

HOST = os.environ.get("WG_HOST", "127.0.0.1")
PORT = int(os.environ.get("WG_PORT", "2220"))
USER = os.environ.get("WG_USER", "")
PASSWORD = os.environ.get("WG_PASSWORD", "")


def login(user=None, password=None):
    """A paramiko connection as this level (or `user`, e.g. LEVEL+TOKEN to join a sandbox)."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a check, not a trust decision
    client.connect(
        HOST,
        port=PORT,
        username=user or USER,
        password=password or PASSWORD,
        look_for_keys=False,
        allow_agent=False,
        timeout=20,
    )
    return client


def run(client, command, stdin=None, timeout=30):
    """Runs `command` over an exec channel; returns its stdout. Raises on a non-zero exit."""
    chan = client.get_transport().open_session()
    chan.settimeout(timeout)
    chan.exec_command(command)
    if stdin is not None:
        chan.sendall(stdin.encode())
    chan.shutdown_write()
    out = chan.makefile("rb").read().decode(errors="replace")
    err = chan.makefile_stderr("rb").read().decode(errors="replace")
    status = chan.recv_exit_status()
    if status != 0:
        sys.stderr.write(err)
        raise SystemExit(f"{command!r} exited with {status}")
    return out


class Terminal:
    """An interactive login shell on a pty, read up to what we expect to see."""

    def __init__(self, client, width=80, height=24):
        self.chan = client.get_transport().open_session()
        self.chan.get_pty(term="xterm", width=width, height=height)
        self.chan.invoke_shell()
        self.buf = ""

    def expect(self, pattern, timeout=15):
        """Waits for `pattern` (a regex); returns the text up to its end and keeps the rest."""
        deadline = time.time() + timeout
        while True:
            m = re.search(pattern, self.buf)
            if m:
                out, self.buf = self.buf[: m.end()], self.buf[m.end():]
                return out
            if time.time() >= deadline:
                break
            self.chan.settimeout(max(0.1, deadline - time.time()))
            try:
                data = self.chan.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            self.buf += data.decode(errors="replace")
        raise SystemExit(f"did not see {pattern!r}; got {self.buf[-300:]!r}")

    def send(self, text):
        self.chan.sendall(text.encode())

    def close(self):
        self.chan.close()


def inside_ssh(password=None):
    """Shell lines for a script run inside the sandbox: ssh (and so git) log in to the gateway's port
    on the sandbox's loopback with `password` (this level's) from an askpass program, no prompt."""
    pw = password or PASSWORD
    return "\n".join([
        'askpass=$(mktemp)',
        f"printf '#!/bin/sh\\necho %s\\n' '{pw}' > \"$askpass\"",
        'chmod 700 "$askpass"',
        'export SSH_ASKPASS="$askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0',
        "export GIT_SSH_COMMAND='ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'",
        f"port={PORT}",
    ]) + "\n"


def answer(text):
    """The last line of stdout is what `wargate check` compares."""
    print(text.strip())
