#!/usr/bin/python3
"""cloakroom: the demo's public daemon on port 5843 (level21 -> level22). wargate runs one for the
whole game, as level22, in a sandbox of its own, and relays every player's connection to
127.0.0.1:$CHALLENGE_PORT. Whoever deposits level21's password gets a ticket; on a later visit
(another connection) the ticket buys level22's password. The tickets live in this one process,
across connections and players: that is why it is a daemon and not a program per connection."""
import asyncio
import os
import secrets
import time

# level22 cannot read /etc/demo_pass/level21: the game gives it a copy of its own.
EXPECTED = "/opt/demo/etc/level21.expected"
ANSWER = "/etc/demo_pass/level22"
TICKET_SECONDS = 120
# Every player talks to this one process: what it keeps, and how long it listens, are bounded.
MAX_TICKETS = 1000
MAX_LINE = 256
IDLE_SECONDS = 60

HELP = """Commands, one a line:
  HELP               this text
  DEPOSIT PASSWORD   leave a password with us; you get a ticket for it
  COLLECT TICKET     collect what a ticket is for
  QUIT               leave
"""

# ticket -> (the visit that got it, when it expires)
tickets = {}
visits = 0


def first_line(path):
    with open(path) as f:
        return f.readline().strip()


def make_room(now):
    for ticket in [t for t, (_, expires) in tickets.items() if expires <= now]:
        del tickets[ticket]
    while len(tickets) >= MAX_TICKETS:
        del tickets[next(iter(tickets))]  # the oldest


def reply(visit, line):
    verb, _, arg = line.strip().partition(" ")
    verb, arg = verb.upper(), arg.strip()
    now = time.monotonic()
    if verb == "HELP":
        return HELP
    if verb == "DEPOSIT":
        if not secrets.compare_digest(arg.encode(), first_line(EXPECTED).encode()):
            return "That is not something we look after.\n"
        make_room(now)
        ticket = secrets.token_hex(8)
        tickets[ticket] = (visit, now + TICKET_SECONDS)
        return f"Thank you. Your ticket: {ticket}\nIt is good for {TICKET_SECONDS} seconds.\n"
    if verb == "COLLECT":
        held = tickets.get(arg)
        if held is None or held[1] <= now:
            return "We have nothing for that ticket.\n"
        if held[0] == visit:
            return "We are still putting it away. Come back on another visit.\n"
        del tickets[arg]
        return f"Here you are. The password for level22 is {first_line(ANSWER)}\n"
    return "Pardon? HELP lists what we understand.\n"


async def serve(reader, writer):
    global visits
    visits += 1
    visit = visits
    try:
        writer.write(b"Cloakroom of wargate-demo. HELP lists what we understand.\n")
        while True:
            writer.write(b"> ")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), IDLE_SECONDS)
            if not line or line.strip().upper() == b"QUIT":
                break
            writer.write(reply(visit, line.decode(errors="replace")).encode())
    except (asyncio.TimeoutError, ValueError, ConnectionError):
        pass  # silent too long, a line too long (ValueError), or gone
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(os.environ["CHALLENGE_PORT"]), limit=MAX_LINE)
    async with server:
        await server.serve_forever()


asyncio.run(main())
