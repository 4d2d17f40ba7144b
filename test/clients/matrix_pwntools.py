"""pwntools (Debian's python3-pwntools) against the gateway, for test/client-matrix.test.ts, the way
a player's exploit script uses it: ssh() with its default connect-time probes (an SFTP session, pwd,
process('false'), a read of /proc/sys/kernel/randomize_va_space, checksec), then shell(), run(),
system(), process() with argv, env and cwd, upload_data()/download_data(), upload_file()/download_file()
and upload_dir()/download_dir(), all on ONE connection.

Each part runs even if another failed; its exception is reported as "error" in its section.
The environment must set PWNLIB_NOTERM=1 (no terminal) and HOME/TMPDIR to a private directory.
WG_ARGS: {"marker": str (a word the shell section echoes), "upload": str (hex of the bytes to upload),
          "uploadFile": str (hex of other bytes, for upload_file)}
Prints {"connect": {...}, "shell": {...}, "run": {...}, "system": {...}, "process": {...},
        "processStdin": {...}, "files": {...}, "fileAndDir": {...}, "remote": {...}, "listen": {...},
        "warnings": [pwntools warnings and errors]}.
"""
import json
import logging
import os
import tempfile

# pwntools logs to stdout, its errors included: the JSON document gets the real stdout to itself, and
# a failing part shows as its "error" instead of as output that is not JSON.
result_out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

import pwnlib  # noqa: E402
from pwn import *  # noqa: E402,F401,F403  as exploit scripts import it
from pwn import context, ssh  # noqa: E402

ARGS = json.loads(os.environ.get("WG_ARGS") or "{}")
context.log_level = "warning"
context.timeout = 20

warnings_seen = []


class Collect(logging.Handler):
    def emit(self, record):
        warnings_seen.append(record.getMessage())


logging.getLogger("pwnlib").addHandler(Collect(level=logging.WARNING))

result = {}


def part(name):
    """Runs the decorated function at once; its return value (or its exception) is result[name]."""
    def run(fn):
        try:
            result[name] = fn()
        except BaseException as err:  # pwntools' log.error raises PwnlibException; EOFError; timeouts
            result[name] = {"error": f"{type(err).__name__}: {err}"}
    return run


def text(data):
    return data.decode("utf-8", errors="replace")


s = ssh(os.environ["WG_USER"], "127.0.0.1", port=int(os.environ["WG_PORT"]), password=os.environ["WG_PASSWORD"])


@part("connect")
def _():
    return {
        "connected": s.connected(),
        # what the probes found: the SFTP session, pwd (only asked over SFTP), the pid that
        # process('false') reported, the ASLR setting, the remote platform
        "sftp": s.sftp is not None,
        "cwd": s.cwd,
        "pid": s.pid,
        "aslr": s.aslr,
        "os": s.os,
        "arch": s.arch,
    }


@part("shell")
def _():
    sh = s.shell()  # pty-req + shell: the level's login shell, as a player gets it
    before_prompt = sh.recvuntil(b"$ ", timeout=15)
    sh.sendline(f"echo {ARGS['marker']}$((6*7)); tty".encode())
    echoed = sh.recvuntil(f"{ARGS['marker']}42".encode(), timeout=10)
    after = sh.recvuntil(b"$ ", timeout=10)
    sh.sendline(b"exit 3")
    rest = sh.recvall(timeout=10)
    return {"beforePrompt": text(before_prompt), "echoed": text(echoed), "after": text(after),
            "rest": text(rest), "status": sh.poll(block=True)}


@part("run")
def _():
    r = s.run("echo out; echo err >&2; exit 4")  # a pty (pwntools' default): stderr shares the terminal
    out = r.recvall(timeout=10)
    return {"output": text(out), "status": r.poll(block=True)}


@part("system")
def _():
    r = s.system("cat; echo typed-eof; exit 5", tty=False)
    r.send(b"from stdin\n")
    r.shutdown("send")
    out = r.recvall(timeout=10)
    return {"output": text(out), "status": r.poll(block=True)}


@part("process")
def _():
    p = s.process(["sh", "-c", 'echo "var=$WG_VAR cwd=$(pwd) user=$(id -un)"; exit 6'],
                  env={"WG_VAR": "from-pwntools", "PATH": "/usr/bin:/bin"}, cwd="/tmp")
    out = p.recvall(timeout=10)
    return {"output": text(out), "status": p.poll(block=True), "pid": p.pid, "uid": p.uid}


@part("processStdin")
def _():
    p = s.process(["python3", "-c", "print(input()[::-1], flush=True); print(input().upper(), flush=True)"])
    p.sendline(b"olleh")
    first = p.recvline(timeout=10)
    p.sendline(b"world")
    second = p.recvline(timeout=10)
    return {"lines": [text(first), text(second)], "status": p.poll(block=True)}


@part("files")
def _():
    data = bytes.fromhex(ARGS["upload"])
    s.upload_data(data, "/tmp/matrix-upload.bin")
    back = s.download_data("/tmp/matrix-upload.bin")
    readme = s.download_data("readme")  # relative: pwntools puts it under the cwd found at connect
    # another channel of the same connection sees the uploaded file: one sandbox per connection
    listing, status = s.run_to_end("stat -c '%U %s' /tmp/matrix-upload.bin")
    return {"sftp": s.sftp is not None, "roundTrip": back == data, "downloadedHex": back.hex(),
            "readme": text(readme), "stat": text(listing), "statStatus": status}


def upload_dir(local, remote):
    """s.upload_dir. Before 4.10 it formats the bytes that `mktemp` (run inside) returns into its tar
    command, `tar -xzf b'/tmp/...'`, and fails against any server (Gallopsled/pwntools#2165): for
    those versions that one call of `mktemp` returns str, the rest is pwntools' own code."""
    if tuple(int(n) for n in pwnlib.__version__.split(".")[:2]) >= (4, 10):
        return s.upload_dir(local, remote)
    mktemp = s.mktemp  # pwntools' runner of the command
    s.mktemp = lambda *args: mktemp(*args).decode()
    try:
        return s.upload_dir(local, remote)
    finally:
        del s.mktemp


@part("fileAndDir")
def _():
    local = tempfile.mkdtemp()
    # Bytes other than the files part's: download_file looks in pwntools' cache by the remote file's
    # sha256 first, and must not be answered from there.
    data = bytes.fromhex(ARGS["uploadFile"])
    with open(os.path.join(local, "payload.bin"), "wb") as f:
        f.write(data)
    remote = s.upload_file(os.path.join(local, "payload.bin"), "/tmp/matrix-payload.bin")
    s.download_file(remote, os.path.join(local, "payload.back"))
    with open(os.path.join(local, "payload.back"), "rb") as f:
        file_round_trip = f.read() == data

    # upload_dir and download_dir go through tar in the sandbox: modes must survive, and a file made
    # inside in between must come back.
    tree = os.path.join(local, "tree")
    os.makedirs(os.path.join(tree, "sub"))
    with open(os.path.join(tree, "a.txt"), "w") as f:
        f.write("alpha\n")
    with open(os.path.join(tree, "sub", "run.sh"), "w") as f:
        f.write("#!/bin/sh\necho ran-as-$(id -un)\n")
    os.chmod(os.path.join(tree, "sub", "run.sh"), 0o755)
    upload_dir(tree, "/tmp")
    inside, status = s.run_to_end("cat /tmp/tree/a.txt && /tmp/tree/sub/run.sh && echo made-inside > /tmp/tree/sub/new.txt")
    back = os.path.join(local, "back")
    s.download_dir("/tmp/tree", back)
    downloaded = {}
    for root, _, files in os.walk(back):
        for name in files:
            path = os.path.join(root, name)
            with open(path) as f:
                downloaded[os.path.relpath(path, back)] = f.read()
    return {"remote": remote, "fileRoundTrip": file_round_trip, "inside": text(inside), "insideStatus": status,
            "downloaded": downloaded, "runMode": oct(os.stat(os.path.join(back, "sub", "run.sh")).st_mode & 0o777)}


@part("remote")
def _():
    # a service on the sandbox's localhost, reached with remote() (direct-tcpip from inside)
    server = s.process(["python3", "-c",
                        "import socket; l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                        "l.bind(('127.0.0.1', 7400)); l.listen(); print('up', flush=True); c, _ = l.accept(); "
                        "c.sendall(b'banner\\n'); c.sendall(c.recv(100)[::-1]); c.close()"])
    server.recvline(timeout=10)
    r = s.remote("localhost", 7400)
    banner = r.recvline(timeout=10)
    r.send(b"pwned")
    answer = r.recvall(timeout=10)
    return {"banner": text(banner), "answer": text(answer)}


@part("listen")
def _():
    # listen() (tcpip-forward inside the sandbox); a program inside connects to it
    l = s.listen(0)
    s.run_to_end("python3 -c \"import socket; socket.create_connection(('127.0.0.1', %d)).sendall(b'knock')\"" % l.port)
    conn = l.wait_for_connection()
    # pwntools sets the listener's socket before its peer address (rhost), on its accepter thread;
    # a peer that closes at once makes recvall() log the close before rhost exists. Let it finish.
    l._accepter.join(10)
    return {"port": l.port, "received": text(conn.recvall(timeout=10))}


s.close()
result["warnings"] = warnings_seen
result_out.write(json.dumps(result))
result_out.flush()
