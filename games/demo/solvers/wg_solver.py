"""What the demo's solvers share: a paramiko login with the credentials `wargate check` passes in
WG_HOST, WG_PORT, WG_USER and WG_PASSWORD, and a command run over an exec channel."""
import os
import sys

import paramiko


def login():
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a check, not a trust decision
    client.connect(
        os.environ["WG_HOST"],
        port=int(os.environ["WG_PORT"]),
        username=os.environ["WG_USER"],
        password=os.environ["WG_PASSWORD"],
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


def answer(text):
    """The last line of stdout is what `wargate check` compares."""
    print(text.strip())
