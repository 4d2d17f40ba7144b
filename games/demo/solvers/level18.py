"""Level 18: clone /srv/git/level18.git over SSH from inside the sandbox; a commit in its history
added the password that a later one removed."""
import re

from wg_solver import answer, inside_ssh, login, run

CLONE = inside_ssh() + r"""
set -e
cd "$(mktemp -d)"
git clone -q "ssh://level18@localhost:$port/srv/git/level18.git" repo </dev/null
cd repo
git log --all -p
"""

with login() as c:
    history = run(c, "/bin/sh", stdin=CLONE, timeout=60)
    found = set(re.findall(r"^[-+](?:.*password.*: )(\w{32})$", history, re.M))
    if len(found) != 1:
        raise SystemExit(f"expected one password in the history, found {len(found)}")
    answer(found.pop())
