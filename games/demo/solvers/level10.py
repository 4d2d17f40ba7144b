"""Level 10: ~/trophy tells level11's password."""
import re

from wg_solver import answer, login, run

with login() as c:
    m = re.search(r"The password for level11 is: (\w+)", run(c, "./trophy"))
    if not m:
        raise SystemExit("the trophy did not tell the password")
    answer(m.group(1))
