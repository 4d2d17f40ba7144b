"""pwntools (Debian's python3-pwntools) plays the demo game from level0 to level4, as a wargame
site's level checks would, for test/pwntools-campaign.test.ts.

Each level is a fresh ssh() login (pwntools' default connect-time behaviour: SFTP, pwd, the
process('false') pid probe, checksec) with the password the previous level revealed, so every hop
is verified by the gateway accepting it. Each level uses a different pwntools feature:
  level0: download_data('readme')                    (SFTP)
  level1: process(['find', 'inhere', '-type', 'f'], cwd=...), then s['cat FILE']
  level2: run('./run-as-level3') for its usage, then system([... 'cat', '/etc/demo_pass/level3'])
  level3: process(['grep', 'millionth', 'data.txt'])
  level4: shell() (a pty and the login shell): cat congratulations at the prompt
A level that fails stops the campaign; its exception is reported as "error".

The environment must set PWNLIB_NOTERM=1 (no terminal) and HOME/TMPDIR to a private directory.
WG_PORT: the gateway's port.
Prints {"levels": [{"level", "password_found", "password", "seconds", "probes", "error"?, ...}, ...],
        "final": {"level": "level4", "logged_in", "congratulations", "seconds", "error"?}}.
"""
import json
import os
import shlex
import sys
import time

from pwn import *  # noqa: F401,F403  as exploit scripts import it
from pwn import context, ssh

context.log_level = "error"
context.timeout = 20

PORT = int(os.environ["WG_PORT"])


def text(data):
    return data.decode("utf-8", errors="replace")


def login(user, password):
    return ssh(user=user, host="127.0.0.1", port=PORT, password=password)


def level0(s, info):
    readme = text(s.download_data("readme"))  # relative: under the cwd pwntools found over SFTP
    return readme.strip().splitlines()[-1].strip()


def level1(s, info):
    find = s.process(["find", "inhere", "-type", "f"], cwd=s.cwd)
    files = text(find.recvall()).split()
    info["found_files"] = files
    if len(files) != 1:
        raise RuntimeError(f"find printed {files!r}")
    return text(s["cat " + shlex.quote(files[0])])  # __getitem__: run() in a pty, output stripped


def level2(s, info):
    usage = s.run("./run-as-level3")  # no arguments: it prints its usage (a pty: stderr included)
    info["usage"] = text(usage.recvall()).strip()
    info["usage_status"] = usage.poll(block=True)
    reveal = s.system(["./run-as-level3", "cat", "/etc/demo_pass/level3"], tty=False)
    password = text(reveal.recvall()).strip()
    info["status"] = reveal.poll(block=True)
    return password


def level3(s, info):
    grep = s.process(["grep", "millionth", "data.txt"])  # cwd: the home pwntools found at connect
    line = text(grep.recvall()).split()
    if len(line) != 2 or line[0] != "millionth":
        raise RuntimeError(f"grep printed {line!r}")
    return line[1]


SOLVERS = [("level0", level0), ("level1", level1), ("level2", level2), ("level3", level3)]


def finish(password):
    """Logs in to level4 and reads its congratulations file in an interactive shell."""
    started = time.monotonic()
    final = {"level": "level4", "logged_in": False, "congratulations": None}
    try:
        s = login("level4", password)
        final["logged_in"] = s.connected()
        try:
            sh = s.shell()
            sh.recvuntil(b"$ ", timeout=15)
            sh.sendline(b"cat congratulations; exit")
            final["congratulations"] = text(sh.recvall(timeout=15))
            final["status"] = sh.poll(block=True)
        finally:
            s.close()
    except BaseException as err:
        final["error"] = f"{type(err).__name__}: {err}"
    final["seconds"] = round(time.monotonic() - started, 3)
    return final


levels = []
password = "level0"  # the only password known at the start
final = None
for index, (user, solve) in enumerate(SOLVERS):
    started = time.monotonic()
    entry = {"level": user, "password_found": False, "password": None}
    try:
        s = login(user, password)  # the previous level's password is verified here
        if index > 0:
            levels[-1]["password_found"] = s.connected()
        entry["probes"] = {"sftp": s.sftp is not None, "cwd": s.cwd, "pid": s.pid}  # what ssh() found at connect
        try:
            entry["password"] = solve(s, entry)
        finally:
            s.close()
    except BaseException as err:  # paramiko's AuthenticationException, pwntools' PwnlibException, EOFError
        entry["error"] = f"{type(err).__name__}: {err}"
    entry["seconds"] = round(time.monotonic() - started, 3)
    levels.append(entry)
    if "error" in entry or not entry["password"]:
        break
    password = entry["password"]
else:
    final = finish(password)
    levels[-1]["password_found"] = final["logged_in"]

sys.stdout.write(json.dumps({"levels": levels, "final": final}))
