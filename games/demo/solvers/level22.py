"""Level 22, the last one: ~/trophy says so; the answer is "done"."""
from wg_solver import answer, login, run

with login() as c:
    if "Thanks for playing" not in run(c, "./trophy"):
        raise SystemExit("the trophy did not run")
    answer("done")
