"""The pre-receive hook git runs for a push: it hands the push to the shipway server that ran
git and prints what the server says back, so a push waits for no interpreter full of imports.

The server passes a socket down to git for each push (its number in SHIPWAY_HOOK_FD); nothing
else can reach it. The hook sends one JSON line, `{"updates": "OLD NEW REF\\n…",
"quarantine": PATH}`, and shuts its side for writing; the server answers with JSON lines,
`{"say": LINE}` for each line the pusher sees as `remote: LINE`, then `{"exit": CODE}`: a
non-zero code rejects the whole push. The script runs as `python -I -S` and imports the
standard library only.
"""

import json
import os
import socket
import sys


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    fd = os.environ.get("SHIPWAY_HOOK_FD", "")
    if not fd.isdigit():
        say(" !     shipway's hook runs under shipway's git server only (SHIPWAY_HOOK_FD is unset)")
        return 1
    request = {"updates": sys.stdin.read(), "quarantine": os.environ.get("GIT_QUARANTINE_PATH")}
    with socket.socket(fileno=int(fd)) as server:
        server.sendall(json.dumps(request).encode() + b"\n")
        server.shutdown(socket.SHUT_WR)
        with server.makefile("rb") as answers:
            for answer in answers:
                message = json.loads(answer)
                if "exit" in message:
                    return int(message["exit"])
                say(message["say"])
    say(" !     shipway stopped before it had deployed the push")
    return 1


if __name__ == "__main__":
    sys.exit(main())
