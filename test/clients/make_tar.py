"""Writes a tar archive exactly as described, hostile entries included (test/helpers/test-images.ts).

argv[1]: a JSON file: {"out": path, "gzip"?: bool, "entries": [entry...]}, each entry
{"name", "type": "file"|"dir"|"symlink"|"hardlink", "data"?: str, "source"?: path (the file's
bytes), "linkname"?: str, "mode"?: int, "uid"?: int, "gid"?: int}. Names are written as given
(absolute, with "..": whatever the test needs); mtime 0 so the same entries give the same bytes.
"""
import io
import json
import sys
import tarfile

TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}

spec = json.load(open(sys.argv[1]))
with tarfile.open(spec["out"], "w:gz" if spec.get("gzip") else "w", format=tarfile.PAX_FORMAT) as t:
    for e in spec["entries"]:
        info = tarfile.TarInfo(e["name"])
        info.type = TYPES[e["type"]]
        info.mode = e.get("mode", 0o755 if e["type"] == "dir" else 0o644)
        info.uid = e.get("uid", 0)
        info.gid = e.get("gid", 0)
        info.mtime = 0
        info.linkname = e.get("linkname", "")
        if e["type"] == "file":
            data = open(e["source"], "rb").read() if "source" in e else e.get("data", "").encode()
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        else:
            t.addfile(info)
