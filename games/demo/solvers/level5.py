"""Level 5: the login shell uppercases what it runs; `$0` (sh's own name) survives that and gives a
real sh, as level6, which reads level6's password."""
from wg_solver import answer, login, run

with login() as c:
    answer(run(c, "$0", stdin="cat /etc/demo_pass/level6\n"))
