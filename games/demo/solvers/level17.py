"""Level 17: cron runs /opt/demo/bin/cronjob_level18.sh every minute as level18; it writes the
password to /var/lib/demo/notes/<md5 of "a note from level18">. Compute the name and wait for the
next run (up to ~70 s at the demo's 60 s period) in this same login: the job runs in our sandbox."""
from wg_solver import answer, login, run

WAIT = r"""
set -e
grep -q 'a note from' /opt/demo/bin/cronjob_level18.sh
name=$(echo "a note from level18" | md5sum | cut -d ' ' -f 1)
i=0
while [ $i -lt 180 ]; do
    if [ -s "/var/lib/demo/notes/$name" ]; then cat "/var/lib/demo/notes/$name"; exit 0; fi
    sleep 0.5
    i=$((i + 1))
done
echo "no cron run within 90 s" >&2
exit 1
"""

with login() as c:
    answer(run(c, "/bin/sh", stdin=WAIT, timeout=100))
