"""Level 15: ~/.bashrc logs out interactive shells; an exec channel runs a command without one."""
from wg_solver import answer, login, run

with login() as c:
    answer(run(c, "cat readme"))
