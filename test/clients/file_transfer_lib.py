"""Shared bits of the file_transfer_*.py paramiko clients (test/file-transfer.test.ts).

Like channels_lib (whose ARGS, emit and read_all they use), plus a login that may ask for
compression: paramiko then offers zlib@openssh.com first, as pwntools does.
"""
import logging
import os

import paramiko

# A refused channel open is an expected result here, not something for paramiko to print.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)


def connect(compress=False):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1",
        port=int(os.environ["WG_PORT"]),
        username=os.environ["WG_USER"],
        password=os.environ["WG_PASSWORD"],
        look_for_keys=False,
        allow_agent=False,
        compress=compress,
        timeout=20,
        banner_timeout=20,
        auth_timeout=20,
    )
    return client
