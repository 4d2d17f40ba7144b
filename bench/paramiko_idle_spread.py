#!/usr/bin/python3
"""bench/paramiko_idle.py, unchanged, with each connection from a loopback source address of its own
group (run by bench/idle-memory.ts).

The gateway admits at most admission.maxPerAddress (default 20) sandboxes per client address, so
holding hundreds of shells from 127.0.0.1 is refused past that. Here socket.create_connection is
wrapped so that connections 0..N-1 come from 127.2.0.1, the next N from 127.2.0.2, and so on (any
127.0.0.0/8 address is local on Linux). Same protocol and environment as paramiko_idle.py, plus:
  WG_PER_ADDRESS  connections per source address (default 16; 0: leave the source address alone)
  WG_POLL_SECONDS how often each idle Transport's reader thread wakes up (paramiko's
                  Transport._active_check_timeout, 0.1 s unless given). A thousand Transports at
                  0.1 s wake 10,000 times a second and take a good part of a core on the host they
                  share with the gateway; a diagnostic run may slow them down.
"""
import os
import runpy
import socket

PER_ADDRESS = int(os.environ.get("WG_PER_ADDRESS", "16"))
_create_connection = socket.create_connection
_opened = 0


def create_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, **kwargs):
    global _opened
    if source_address is None and PER_ADDRESS > 0:
        n = _opened // PER_ADDRESS
        _opened += 1
        source_address = ("127.2.%d.%d" % (n // 250, n % 250 + 1), 0)
    return _create_connection(address, timeout, source_address, **kwargs)


socket.create_connection = create_connection
if os.environ.get("WG_POLL_SECONDS"):
    import paramiko

    paramiko.Transport._active_check_timeout = float(os.environ["WG_POLL_SECONDS"])
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "paramiko_idle.py"), run_name="__main__")
