"""Port forwarding with paramiko, all on one connection (so all in one sandbox).

1. exec: a python3 echo server on 127.0.0.1:7100 inside the sandbox, which prints "ready";
2. direct-tcpip to ("localhost", 7100): send "ping", read the echo;
3. tcpip-forward on ("127.0.0.1", 0): the gateway picks the port inside; an exec inside connects
   to it and sends "pong"; the forwarded-tcpip channel that arrives here reads it;
4. direct-tcpip to 127.0.0.1:7199 (nothing listens inside): the open must fail.
Prints {"echo", "boundPort", "forwarded", "refusedError"}.
"""
import threading

import paramiko
from channels_lib import connect, emit

ECHO = (
    "import socket\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', 7100)); s.listen(); print('ready', flush=True)\n"
    "c, _ = s.accept(); c.sendall(b'echo:' + c.recv(100)); c.close()\n"
)


def read_to_eof(channel):
    data = b""
    while True:
        chunk = channel.recv(100)
        if not chunk:
            return data
        data += chunk


client = connect()
transport = client.get_transport()

server = transport.open_session()
server.exec_command("python3 -c \"%s\"" % ECHO.replace('"', '\\"'))
ready = b""
while b"ready" not in ready:
    ready += server.recv(100)

direct = transport.open_channel("direct-tcpip", ("localhost", 7100), ("127.0.0.1", 40000), timeout=10)
direct.sendall(b"ping")
echo = read_to_eof(direct)
direct.close()

arrived = threading.Event()
forwarded = {}


def read_forwarded(channel, server_addr):
    forwarded["data"] = read_to_eof(channel).decode()
    forwarded["server"] = list(server_addr)
    channel.close()
    arrived.set()


def on_forward(channel, origin, server_addr):
    # paramiko calls this on its transport thread, which must not block
    threading.Thread(target=read_forwarded, args=(channel, server_addr)).start()


port = transport.request_port_forward("127.0.0.1", 0, handler=on_forward)
sender = transport.open_session()
sender.exec_command("python3 -c \"import socket; c = socket.create_connection(('127.0.0.1', %d)); c.sendall(b'pong'); c.close()\"" % port)
arrived.wait(10)

refused = None
try:
    transport.open_channel("direct-tcpip", ("127.0.0.1", 7199), ("127.0.0.1", 40001), timeout=10)
except paramiko.ChannelException as e:
    refused = str(e)

emit({"echo": echo.decode(), "boundPort": port, "forwarded": forwarded, "refusedError": refused})
client.close()
