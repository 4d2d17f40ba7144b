"""Level 1: a hidden file somewhere under ~/inhere holds the password."""
from wg_solver import answer, login, run

with login() as c:
    answer(run(c, "find inhere -type f -exec cat {} +"))
