#!/usr/bin/python3
"""Public-key logins with one RSA key, signed with each algorithm of WG_ARGS.algorithms in turn
(test/algorithms.test.ts): does the gateway accept a SHA-2 (rsa-sha2-512/256) and refuse a SHA-1
(ssh-rsa) signature? paramiko picks the signature algorithm from the server's server-sig-algs,
which no longer lists ssh-rsa; to send what an old or hostile client would, that list is forgotten
after the key exchange and every other RSA algorithm disabled, so paramiko signs with the one asked.
The key is WG_ARGS.key (a private key file). Prints one JSON document:
{"serverSigAlgs": [...], "results": {"ssh-rsa": "refused", "rsa-sha2-512": "accepted", ...}}
"""
import json
import os
import socket
import time

import paramiko

ARGS = json.loads(os.environ.get("WG_ARGS") or "{}")
RSA_ALGOS = ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]


def attempt(algorithm, key):
    sock = socket.create_connection(("127.0.0.1", int(os.environ["WG_PORT"])), timeout=20)
    disabled = {"pubkeys": [a for a in RSA_ALGOS if a != algorithm]}
    transport = paramiko.Transport(sock, disabled_algorithms=disabled)
    try:
        transport.start_client(timeout=20)
        # EXT_INFO follows the server's NEWKEYS at once; give paramiko's thread a moment to read it.
        deadline = time.time() + 5
        while "server-sig-algs" not in transport.server_extensions and time.time() < deadline:
            time.sleep(0.05)
        server_sig_algs = transport.server_extensions.get("server-sig-algs", b"").decode().split(",")
        transport.server_extensions = {}
        try:
            transport.auth_publickey(os.environ["WG_USER"], key)
            result = "accepted" if transport.is_authenticated() else "refused"
        except paramiko.AuthenticationException:
            result = "refused"
        return server_sig_algs, result
    finally:
        transport.close()


def main():
    key = paramiko.RSAKey.from_private_key_file(ARGS["key"])
    doc = {"results": {}}
    for algorithm in ARGS["algorithms"]:
        doc["serverSigAlgs"], doc["results"][algorithm] = attempt(algorithm, key)
    print(json.dumps(doc))


main()
