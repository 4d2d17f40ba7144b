"""Level 6: the login shell is `more` on ~/text.txt. On a 5-row terminal more waits; `v` opens vi,
and vi's `:!` runs a command as level6: ~/trophy, which tells level7's password."""
import re

from wg_solver import Terminal, answer, login

with login() as c:
    term = Terminal(c, width=80, height=5)
    term.expect(r"--More--")
    term.send("v")
    term.expect(r'"~/text.txt"')
    term.send(":!~/trophy\r")
    out = term.expect(r"Press ENTER")
    term.send("\r")
    term.send(":q!\r")
    term.send("q")
    term.close()
    m = re.search(r"The password for level7 is: (\w+)", out)
    if "You escaped the pager" not in out or not m:
        raise SystemExit(f"the trophy did not run: {out[-300:]!r}")
    answer(m.group(1))
