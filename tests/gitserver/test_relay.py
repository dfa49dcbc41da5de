"""The pre-receive hook git runs is a script of the standard library only: it hands the push
to the server over the push's own channel and passes back what the server says."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from shipway.client.api import Api
from shipway.gitserver import hook, repos

OLD, NEW = "a" * 40, "b" * 40
#: Nothing listens there: a branch's deploy cannot reach the API.
NOWHERE = Api("http://127.0.0.1:9", "token")


def relay(channel: hook.Channel | None, stdin: str) -> subprocess.CompletedProcess[str]:
    """Run the hook as git does, with CHANNEL's end inherited (or none)."""
    try:
        return subprocess.run(
            [sys.executable, "-I", "-S", str(repos.RELAY)],
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


def test_the_hook_imports_nothing_but_os_and_sys() -> None:
    """git waits for the hook's start on every push: it loads no module beyond those two."""

    def imported(*argv: str) -> set[str]:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-X", "importtime", *argv],
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
        return {line.split("|")[-1].strip() for line in lines[1:]}

    assert imported(str(repos.RELAY)) <= imported("-c", "import os, sys")


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
