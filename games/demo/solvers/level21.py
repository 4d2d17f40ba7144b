"""Level 21: the cloakroom on public port 5843 is one daemon for every player. DEPOSIT this level's
password for a ticket, then COLLECT the ticket on a second connection (not the one that got it):
the answer is the password for level22."""
import os
import re
import socket
import time

from wg_solver import HOST, PASSWORD, answer

PORT = 5843 + int(os.environ.get("WG_PORT_OFFSET", "0"))


def visit(*lines):
    """One connection: sends `lines` and QUIT, returns all the cloakroom says until it closes."""
    # The gateway answers for the daemon while it (re)starts: try again for a while.
    for _ in range(20):
        with socket.create_connection((HOST, PORT), timeout=20) as s:
            s.sendall("".join(f"{line}\n" for line in [*lines, "QUIT"]).encode())
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
        text = reply.decode(errors="replace")
        if not text.startswith("wargate: this challenge is restarting"):
            return text
        time.sleep(1)
    raise SystemExit(f"the cloakroom never answered: {text!r}")


ticket = re.search(r"Your ticket: (\w+)", visit(f"DEPOSIT {PASSWORD}"))
if not ticket:
    raise SystemExit("no ticket for this level's password")
m = re.search(r"The password for level22 is (\w+)", visit(f"COLLECT {ticket.group(1)}"))
if not m:
    raise SystemExit("the ticket bought nothing")
answer(m.group(1))
