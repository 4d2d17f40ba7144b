"""Level 2: the setuid ~/run-as-level3 reads level3's password file."""
from wg_solver import answer, login, run

with login() as c:
    answer(run(c, "./run-as-level3 cat /etc/demo_pass/level3"))
