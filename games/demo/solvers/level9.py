"""Level 9: of ports 31000-31010, all echo but one; try each with this level's password."""
import re

from wg_solver import answer, login, run

SCAN = r"""
for port in $(seq 31000 31010); do
    printf '%s: %s\n' "$port" "$(nc -N -w 5 localhost "$port" < /etc/demo_pass/level9 | tr '\n' ' ')"
done
"""

with login() as c:
    out = run(c, "/bin/sh", stdin=SCAN, timeout=60)
    found = re.findall(r"^(\d+): Correct! (\w+)", out, re.M)
    if len(found) != 1:
        raise SystemExit(f"expected one port to answer, got:\n{out}")
    answer(found[0][1])
