"""paramiko SFTP on one connection, optionally compressed, then a command on the same connection.

WG_ARGS: {"compress"?: bool, "uploads": [[local, remote], ...], "downloads": [[remote, local], ...],
"check": a command run over exec after the transfers, "forbidden": a remote path an upload to must
fail, "leaveOpen"?: bool (end by dropping the connection while the SFTP channel and a command
still run, as a script that exits without closing anything does)}
Prints {"compression": [client->server, server->client], "home", "listdir", "stat": {remote: {size,
uid, gid, mode}}, "inDir", "afterRemove", "forbidden": {errno, text} or null, "check": {stdout,
stderr, status}}.
"""
import stat

from channels_lib import ARGS, emit, read_all
from file_transfer_lib import connect

client = connect(ARGS.get("compress", False))
transport = client.get_transport()
sftp = client.open_sftp()
doc = {"compression": [transport.local_compression, transport.remote_compression], "home": sftp.normalize(".")}

for local, remote in ARGS["uploads"]:
    sftp.put(local, remote)
doc["listdir"] = sorted(sftp.listdir("."))
doc["stat"] = {}
for _, remote in ARGS["uploads"]:
    st = sftp.stat(remote)
    doc["stat"][remote] = {"size": st.st_size, "uid": st.st_uid, "gid": st.st_gid, "mode": oct(stat.S_IMODE(st.st_mode))}

sftp.mkdir("ft-dir")
sftp.put(ARGS["uploads"][0][0], "ft-dir/inner")
doc["inDir"] = sftp.listdir("ft-dir")
sftp.remove("ft-dir/inner")
sftp.rmdir("ft-dir")
doc["afterRemove"] = sorted(sftp.listdir("."))

for remote, local in ARGS["downloads"]:
    sftp.get(remote, local)

doc["forbidden"] = None
try:
    sftp.put(ARGS["uploads"][0][0], ARGS["forbidden"])
except IOError as e:
    doc["forbidden"] = {"errno": e.errno, "text": str(e)}

chan = transport.open_session()
chan.exec_command(ARGS["check"])
out, err, status, _ = read_all(chan)
doc["check"] = {"stdout": out, "stderr": err, "status": status}

if ARGS.get("leaveOpen"):
    # The gateway goes on writing to this connection after it has gone (the command's exit-status,
    # the SFTP server's end): with compression, ssh2 used to throw there (mscdex/ssh2#1178).
    running = transport.open_session()
    running.exec_command("sleep 0.2; echo late; sleep 30")
    sftp.listdir(".")
    emit(doc)
    transport.close()
else:
    sftp.close()
    emit(doc)
    client.close()
