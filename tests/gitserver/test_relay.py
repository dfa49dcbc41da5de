"""The pre-receive hook git runs is a small C program: it hands the push to the server over the
push's own channel and passes back what the server says."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from shipway import native
from shipway.client.api import Api
from shipway.gitserver import hook, repos

OLD, NEW = "a" * 40, "b" * 40
#: Nothing listens there: a branch's deploy cannot reach the API.
NOWHERE = Api("http://127.0.0.1:9", "token")


def relay(channel: hook.Channel | None, stdin: str) -> subprocess.CompletedProcess[str]:
    """Run the hook as git does, with CHANNEL's end inherited (or none)."""
    try:
        return subprocess.run(
            [native.program(repos.RELAY)],
            input=stdin,
            env={"PATH": "/usr/bin:/bin", **(channel.env if channel else {})},
            pass_fds=channel.fds if channel else (),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        if channel is not None:
            channel.close()


def test_what_the_server_says_reaches_the_pusher_with_its_exit_code() -> None:
    kept = relay(hook.Channel(NOWHERE, "web"), f"{OLD} {NEW} refs/tags/v1\n")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout == "-----> Kept refs/tags/v1 without deploying: only branches deploy\n"
    refused = relay(hook.Channel(NOWHERE, "web"), f"{OLD} {NEW} refs/heads/main\n")
    assert refused.returncode == 1, refused.stderr
    assert refused.stdout.startswith("-----> Received main (bbbbbbb)\n !     cannot reach shipway")


def test_the_hook_refuses_to_run_outside_a_push_to_shipway() -> None:
    alone = relay(None, f"{OLD} {NEW} refs/heads/main\n")
    assert alone.returncode == 1
    assert "runs under shipway's git server only (SHIPWAY_HOOK_FD is unset)" in alone.stdout


def test_the_server_side_ends_when_git_never_runs_the_hook() -> None:
    channel = hook.Channel(NOWHERE, "web")
    channel.close()
    channel.thread.join(30)
    assert not channel.thread.is_alive()


def test_the_hook_git_runs_is_the_relay_program(tmp_path: Path) -> None:
    repo = repos.ensure(tmp_path, 1, "web", "identity")
    hook = (repo / "hooks" / repos.HOOK).read_text()
    assert hook.splitlines()[-1] == f"exec {native.program(repos.RELAY)}"


def test_a_server_that_says_much_and_nonsense_reaches_the_pusher_as_it_is() -> None:
    """Lines of any kind but exit are shown; a bad exit code rejects the push."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        long = "x" * 100_000
        theirs.sendall(f"say one\nsay {long}\nbare\nsay two words\nexit nope\n".encode())
        done = subprocess.run(
            [native.program(repos.RELAY)],
            input=f"{OLD} {NEW} refs/heads/main\n",
            env={"SHIPWAY_HOOK_FD": str(ours.fileno())},
            pass_fds=(ours.fileno(),),
            capture_output=True,
            text=True,
            timeout=60,
        )
        sent = theirs.recv(4096).decode()
    assert sent == f"{len(OLD + NEW) + 19}\n\n{OLD} {NEW} refs/heads/main\n"
    assert done.returncode == 1
    assert done.stdout == f"one\n{long}\n\ntwo words\n"


@pytest.mark.parametrize("sent", [b"", b"x" * 100, b"12x\n", b"99999999999\n", b"20\nshort"])
def test_a_hook_that_sends_nonsense_deploys_nothing_and_the_server_side_ends(sent: bytes) -> None:
    channel = hook.Channel(NOWHERE, "web")
    with socket.socket(fileno=os.dup(channel.fds[0])) as theirs:
        channel.close()
        theirs.sendall(sent)
        theirs.shutdown(socket.SHUT_WR)
        channel.thread.join(30)
        assert not channel.thread.is_alive()
        assert theirs.recv(1024) == b""
