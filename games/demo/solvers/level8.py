"""Level 8: the same over TLS on localhost:30001 (a self-signed certificate: s_client goes on)."""
from wg_solver import answer, login, run

with login() as c:
    out = run(c, "openssl s_client -quiet -connect localhost:30001 < /etc/demo_pass/level8 2>/dev/null")
    lines = out.strip().splitlines()
    if "Correct!" not in lines:
        raise SystemExit(f"the service said {out!r}")
    answer(lines[-1])
