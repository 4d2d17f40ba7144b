"""Level 19: clone /srv/git/level19.git, commit the key.txt its README asks for, push: the
server's pre-receive hook refuses the push and answers it with the password for level20."""
import re

from wg_solver import answer, inside_ssh, login, run

PUSH = inside_ssh() + r"""
set -e
cd "$(mktemp -d)"
git clone -q "ssh://level19@localhost:$port/srv/git/level19.git" repo </dev/null
cd repo
words=$(sed -n 's/^    \(May I .*\)$/\1/p' README.md)
echo "$words" > key.txt
git add key.txt
git -c user.name=player -c user.email=player@localhost commit -q -m "asking politely"
git push origin main </dev/null 2>&1 || true
"""

with login() as c:
    out = run(c, "/bin/sh", stdin=PUSH, timeout=60)
    m = re.search(r"The password for level20 is (\w+)", out)
    if not m:
        raise SystemExit(f"the server did not answer: {out[-400:]!r}")
    answer(m.group(1))
