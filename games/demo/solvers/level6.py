"""Level 6: the login shell is `more` on ~/text.txt. On a 5-row terminal more waits; `v` opens vi,
and vi's `:!` runs a command as level6: ~/trophy. The last level: prints "done" once the trophy
has said so."""
import re
import sys
import time

from wg_solver import answer, login


def expect(chan, pattern, buf, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, buf[0])
        if m:
            out, buf[0] = buf[0][: m.end()], buf[0][m.end():]
            return out
        chan.settimeout(max(0.1, deadline - time.time()))
        try:
            data = chan.recv(65536)
        except TimeoutError:
            break
        if not data:
            break
        buf[0] += data.decode(errors="replace")
    raise SystemExit(f"did not see {pattern!r}; got {buf[0][-300:]!r}")


with login() as c:
    chan = c.get_transport().open_session()
    chan.get_pty(term="xterm", width=80, height=5)
    chan.invoke_shell()
    buf = [""]
    expect(chan, r"--More--", buf)
    chan.sendall(b"v")
    expect(chan, r'"~/text.txt"', buf)
    chan.sendall(b":!~/trophy\r")
    out = expect(chan, r"Press ENTER", buf)
    chan.sendall(b"\r")
    time.sleep(0.3)
    chan.sendall(b":q!\r")
    chan.sendall(b"q")
    chan.close()
    if "You escaped the pager" not in out:
        sys.stderr.write(out)
        raise SystemExit("the trophy did not run")
    answer("done")
