"""Level 16: ~/suconnect PORT connects to a listener of ours and trades this level's password for
the next. Two terminals of one sandbox, as a player would: the login shell's text names a join
token; a second login, LEVEL+TOKEN, listens with nc, the first runs suconnect."""
import re

from wg_solver import PASSWORD, USER, Terminal, answer, login, run

PORT = 4817

with login() as first:
    term = Terminal(first)
    token = re.search(rf"log in as {USER}\+(\w+)", term.expect(r"\$ $")).group(1)
    with login(user=f"{USER}+{token}") as second:
        listener = second.get_transport().open_session()
        listener.settimeout(30)
        listener.exec_command(f"nc -l 127.0.0.1 {PORT}")
        listener.sendall(f"{PASSWORD}\n".encode())
        # Until nc listens, suconnect cannot connect: try again for a few seconds.
        term.send(f"for i in $(seq 50); do ~/suconnect {PORT} && break; sleep 0.2; done; echo suconnect-done\r")
        said = term.expect(r"\nsuconnect-done", timeout=20)
        if "Password matches" not in said:
            raise SystemExit(f"suconnect said {said[-300:]!r}")
        out = listener.makefile("rb").read().decode(errors="replace")
        term.send("exit\r")
        term.close()
    answer(out.strip().splitlines()[-1])
