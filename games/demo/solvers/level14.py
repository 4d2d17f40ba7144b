"""Level 14: ~/data.hex is an xxd dump of gzip, bzip2 and tar layers; peel them as `file` says."""
from wg_solver import answer, login, run

PEEL = r"""
set -e
cd "$(mktemp -d)"
xxd -r ~/data.hex > layer
for i in $(seq 1 20); do
    kind=$(file -b layer)
    echo "layer $i: $kind" >&2
    case "$kind" in
        gzip*) mv layer layer.gz && gzip -d layer.gz ;;
        bzip2*) mv layer layer.bz2 && bzip2 -d layer.bz2 ;;
        *tar\ archive*)
            mkdir out && tar -xf layer -C out && rm layer
            mv out/* layer && rmdir out ;;
        *text*) cat layer; exit 0 ;;
        *) echo "what is this? $kind" >&2; exit 1 ;;
    esac
done
exit 1
"""

with login() as c:
    text = run(c, "/bin/sh", stdin=PEEL)
    if "password" not in text:
        raise SystemExit(f"no password inside: {text!r}")
    answer(text.split()[-1])
