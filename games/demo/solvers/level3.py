"""Level 3: the password is next to "millionth" in ~/data.txt."""
from wg_solver import answer, login, run

with login() as c:
    word, password = run(c, "grep millionth data.txt").split()
    answer(password)
