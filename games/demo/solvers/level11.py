"""Level 11: one file under ~/maze is owned by level12, group level11, and 33 bytes long."""
import shlex

from wg_solver import answer, login, run

with login() as c:
    found = run(c, "find maze -type f -user level12 -group level11 -size 33c").strip().splitlines()
    if len(found) != 1:
        raise SystemExit(f"expected one file, found {found}")
    answer(run(c, f"cat -- {shlex.quote(found[0])}"))
