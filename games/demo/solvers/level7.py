"""Level 7: the service on localhost:30000 answers this level's password with the next one."""
from wg_solver import answer, login, run

with login() as c:
    out = run(c, "nc -N localhost 30000 < /etc/demo_pass/level7")
    if not out.startswith("Correct!"):
        raise SystemExit(f"the service said {out!r}")
    answer(out.strip().splitlines()[-1])
