"""Level 12: the password is the one line of ~/data.txt that occurs only once."""
from wg_solver import answer, login, run

with login() as c:
    once = run(c, "sort data.txt | uniq -u").split()
    if len(once) != 1:
        raise SystemExit(f"expected one line, found {len(once)}")
    answer(once[0])
