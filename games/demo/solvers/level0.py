"""Level 0: the password is the last line of ~/readme."""
from wg_solver import answer, login, run

with login() as c:
    answer(run(c, "cat readme").strip().splitlines()[-1])
