#!/usr/bin/python3
"""One paramiko login that may be refused by admission (test/admission.test.ts): what does the
player see? Connects from WG_ARGS.source (a loopback address, default 127.0.0.1) so tests can play
several client addresses, authenticates, then:
  mode "exec":  exec_command(cmd) without a pty; reports stdout, stderr and exit status
  mode "shell": invoke_shell() (pty-req + shell, as an interactive player); reports the output
  mode "hold":  exec_command(cmd) and report only once it finished (for a login that gets in)
Always reports whether the server closed the connection within `closeWithin` seconds afterwards.
Prints one JSON document.
"""
import json
import os
import socket
import time

import paramiko

from channels_lib import ARGS, emit, text


def main():
    port = int(os.environ["WG_PORT"])
    sock = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(ARGS.get("source", "127.0.0.1"), 0))
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", port=port, username=os.environ["WG_USER"], password=os.environ["WG_PASSWORD"], sock=sock,
                   look_for_keys=False, allow_agent=False, timeout=20, banner_timeout=20, auth_timeout=20)
    transport = client.get_transport()
    mode = ARGS.get("mode", "exec")
    doc = {"mode": mode}
    if mode == "shell":
        chan = transport.open_session(timeout=20)
        chan.settimeout(20)
        chan.get_pty(term="xterm", width=80, height=24)
        chan.invoke_shell()
        out = b""
        while True:
            data = chan.recv(65536)
            if not data:
                break
            out += data
        doc.update(stdout=text(out), stderr=text(chan.recv_stderr(65536) if chan.recv_stderr_ready() else b""),
                   status=chan.recv_exit_status())
    else:
        _, stdout, stderr = client.exec_command(ARGS.get("cmd", "id -un"), timeout=20)
        doc.update(stdout=text(stdout.read()), stderr=text(stderr.read()), status=stdout.channel.recv_exit_status())
    deadline = time.monotonic() + float(ARGS.get("closeWithin", 5))
    while transport.is_active() and time.monotonic() < deadline:
        time.sleep(0.05)
    doc["closedByServer"] = not transport.is_active()
    client.close()
    emit(doc)


if __name__ == "__main__":
    main()
