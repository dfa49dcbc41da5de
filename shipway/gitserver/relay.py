"""The pre-receive hook git runs for a push: it hands the push to the shipway server that ran
git and prints what the server says back, so a push waits for no interpreter full of imports.

The server passes a socket down to git for each push (its number in SHIPWAY_HOOK_FD); nothing
else can reach it. The hook sends `LENGTH\\n` and then LENGTH bytes: the push's quarantine
directory (an empty line when there is none) and git's `OLD NEW REF` lines. The server answers
with lines: `say TEXT` for each line the pusher sees as `remote: TEXT`, then `exit CODE`; a
non-zero code rejects the whole push. The script runs as `python -I -S` and imports nothing
but os and sys, which the interpreter has loaded already: every push waits for its start.
"""

import os
import sys


def write(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def main() -> int:
    fd = os.environ.get("SHIPWAY_HOOK_FD", "")
    if not fd.isdigit():
        write(1, b" !     shipway's hook runs under shipway's git server only ")
        write(1, b"(SHIPWAY_HOOK_FD is unset)\n")
        return 1
    server = int(fd)
    body = os.environ.get("GIT_QUARANTINE_PATH", "").encode() + b"\n" + sys.stdin.buffer.read()
    write(server, b"%d\n" % len(body) + body)
    pending = b""
    while chunk := os.read(server, 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            kind, _, text = line.partition(b" ")
            if kind == b"exit":
                return int(text)
            write(1, text + b"\n")
    write(1, b" !     shipway stopped before it had deployed the push\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
