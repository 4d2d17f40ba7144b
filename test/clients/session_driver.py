#!/usr/bin/python3
"""Holds one or more paramiko logins open at once and runs requests on them, for tests that need
several live sandboxes side by side or need to end a connection in a particular way.

Environment: WG_PORT, WG_USER, WG_PASSWORD (the default login), WG_ARGS (JSON, optional):
  {"logins": [{"user": "level0", "password": "level0"}, ...]}   (default: one login as WG_USER)

Protocol: when every login is authenticated it prints one JSON line {"ready": true, "logins": N}.
Then it reads requests, one JSON object per line on stdin, and answers each with one JSON line:
  {"op": "exec", "login": I, "cmd": "...", "timeout": S}  -> {"ok": true, "stdout", "stderr", "status"}
  {"op": "reset", "login": I}   SO_LINGER {on, 0} on the login's TCP socket, then close it: the
                                kernel sends RST instead of FIN, as when a network path breaks hard
                                -> {"ok": true}
  {"op": "close", "login": I}   a clean SSH disconnect -> {"ok": true}
  {"op": "quit"}                closes what is left and exits 0
A failed request answers {"ok": false, "error": "..."}; the script keeps serving.
"""
import json
import logging
import os
import socket
import struct
import sys
import time

import paramiko

logging.getLogger("paramiko").setLevel(logging.CRITICAL)


def out(doc):
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def connect(port, user, password):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", port=port, username=user, password=password,
                   look_for_keys=False, allow_agent=False, timeout=20, banner_timeout=20, auth_timeout=20)
    return client


def run(client, cmd, timeout):
    chan = client.get_transport().open_session(timeout=timeout)
    chan.settimeout(timeout)
    chan.exec_command(cmd)
    chan.shutdown_write()
    stdout, stderr = b"", b""
    deadline = time.monotonic() + timeout
    while True:
        if chan.recv_ready():
            stdout += chan.recv(65536)
        elif chan.recv_stderr_ready():
            stderr += chan.recv_stderr(65536)
        elif chan.exit_status_ready() and chan.eof_received:
            break
        elif time.monotonic() > deadline:
            raise TimeoutError(f"command did not finish within {timeout} s: {cmd!r}")
        else:
            time.sleep(0.01)
    while chan.recv_ready():
        stdout += chan.recv(65536)
    while chan.recv_stderr_ready():
        stderr += chan.recv_stderr(65536)
    status = chan.recv_exit_status()
    chan.close()
    return {"stdout": stdout.decode("utf-8", "replace"), "stderr": stderr.decode("utf-8", "replace"), "status": status}


def reset(client):
    transport = client.get_transport()
    sock = transport.sock
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # paramiko's reader thread polls the socket every 0.1 s; the kernel releases the socket (and so
    # sends the RST) once that poll lets go of it. Nothing is sent at the SSH layer.
    sock.close()
    time.sleep(0.3)


def main():
    port = int(os.environ["WG_PORT"])
    args = json.loads(os.environ.get("WG_ARGS") or "{}")
    logins = args.get("logins") or [{"user": os.environ["WG_USER"], "password": os.environ["WG_PASSWORD"]}]
    clients = [connect(port, l["user"], l["password"]) for l in logins]
    out({"ready": True, "logins": len(clients)})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            op = req["op"]
            if op == "quit":
                break
            client = clients[req.get("login", 0)]
            if op == "exec":
                out({"ok": True, **run(client, req["cmd"], float(req.get("timeout", 20)))})
            elif op == "reset":
                reset(client)
                out({"ok": True})
            elif op == "close":
                client.close()
                out({"ok": True})
            else:
                out({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as err:  # report and keep serving: the test decides what a failure means
            out({"ok": False, "error": f"{type(err).__name__}: {err}"})
    for client in clients:
        try:
            client.close()
        except Exception:
            pass
    out({"done": True})
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
