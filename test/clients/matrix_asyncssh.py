"""asyncssh (Debian's python3-asyncssh) against the gateway, for test/client-matrix.test.ts.

One connection: an exec channel (with env requests), then a shell with a pty driven interactively:
wait for the prompt, type a command, wait for its output, type more, read until the channel closes.

WG_ARGS: {"command": str, "env": {name: value}, "term": str, "cols": int, "rows": int,
          "prompt": str, "first": str (typed at the prompt), "firstOutput": str (awaited after it),
          "rest": str (typed then; it should end the shell)}
Prints {"exec": {"stdout", "stderr", "status"},
        "shell": {"untilPrompt", "sawPrompt", "afterFirst", "sawFirstOutput", "rest", "status"}}.
"""
import asyncio
import json
import os
import sys
import warnings

# Debian's asyncssh imports ciphers that cryptography marks deprecated: keep stderr for real errors.
warnings.simplefilter("ignore")
import asyncssh  # noqa: E402

ARGS = json.loads(os.environ.get("WG_ARGS") or "{}")
STEP_TIMEOUT = 15


async def read_until(stream, needle):
    """Reads `stream` until `needle` appears or the timeout passes; returns (text, found)."""
    text = ""
    try:
        while needle not in text:
            chunk = await asyncio.wait_for(stream.read(4096), STEP_TIMEOUT)
            if not chunk:
                break
            text += chunk
    except asyncio.TimeoutError:
        pass
    return text, needle in text


async def main():
    async with asyncssh.connect(
        "127.0.0.1",
        port=int(os.environ["WG_PORT"]),
        username=os.environ["WG_USER"],
        password=os.environ["WG_PASSWORD"],
        known_hosts=None,
        client_keys=None,
        agent_path=None,
        connect_timeout=20,
    ) as conn:
        r = await asyncio.wait_for(conn.run(ARGS["command"], env=ARGS.get("env"), input="", check=False), STEP_TIMEOUT)
        result = {"exec": {"stdout": r.stdout, "stderr": r.stderr, "status": r.exit_status}}

        proc = await conn.create_process(term_type=ARGS["term"], term_size=(ARGS["cols"], ARGS["rows"]))
        until_prompt, saw_prompt = await read_until(proc.stdout, ARGS["prompt"])
        after_first, saw_first = "", False
        rest = ""
        if saw_prompt:
            proc.stdin.write(ARGS["first"])
            after_first, saw_first = await read_until(proc.stdout, ARGS["firstOutput"])
            if saw_first:
                proc.stdin.write(ARGS["rest"])
                rest = await asyncio.wait_for(proc.stdout.read(), STEP_TIMEOUT)
        proc.close()
        await asyncio.wait_for(proc.wait_closed(), STEP_TIMEOUT)
        result["shell"] = {
            "untilPrompt": until_prompt,
            "sawPrompt": saw_prompt,
            "afterFirst": after_first,
            "sawFirstOutput": saw_first,
            "rest": rest,
            "status": proc.exit_status,
        }
    sys.stdout.write(json.dumps(result))


asyncio.run(main())
