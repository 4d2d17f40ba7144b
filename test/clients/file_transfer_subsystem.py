"""Subsystem requests on one paramiko connection.

An unknown subsystem is refused (want-reply answered with failure) and the connection goes on;
"sftp" after a pty-req still speaks the binary SFTP protocol untouched by a terminal (\r\n, ^C, ^D
bytes survive a round trip). Prints {"unknownRefused", "error", "activeAfter", "ptySftp", "exec"}.
"""
import io

import paramiko

from channels_lib import emit, read_all
from file_transfer_lib import connect

client = connect()
transport = client.get_transport()
doc = {}
chan = transport.open_session(timeout=10)
try:
    chan.invoke_subsystem("no-such-subsystem")
    doc["unknownRefused"] = False
except paramiko.SSHException as e:
    doc["unknownRefused"] = True
    doc["error"] = str(e)
doc["activeAfter"] = transport.is_active()

chan = transport.open_session(timeout=10)
chan.get_pty()
chan.invoke_subsystem("sftp")
sftp = paramiko.SFTPClient(chan)
data = b"line\r\nctrl-c \x03 ctrl-d \x04 ctrl-z \x1a end\n" * 100
sftp.putfo(io.BytesIO(data), "pty.bin")
back = io.BytesIO()
sftp.getfo("pty.bin", back)
doc["ptySftp"] = back.getvalue() == data
sftp.close()

chan = transport.open_session(timeout=10)
chan.exec_command("wc -c < pty.bin")
doc["exec"] = read_all(chan)[0]
emit(doc)
client.close()
