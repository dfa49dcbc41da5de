"""Children started by shipway.children: only the fds handed over, on asyncio's loop and on
uvloop's (which the node runs), and the asyncio.subprocess.Process behaviour callers use."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
import uvloop

from shipway import children

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
#: The child's open fds; the one it lists the directory through is closed by the time of fstat.
LIST_FDS = """
import os
def is_open(fd):
    try:
        return os.fstat(fd) is not None
    except OSError:
        return False
print(' '.join(fd for fd in sorted(os.listdir('/proc/self/fd'), key=int) if is_open(int(fd))))
"""


@pytest.fixture(params=sorted(LOOPS))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    loop = LOOPS[request.param]()
    yield loop
    loop.close()


def _fds_of_child(loop: asyncio.AbstractEventLoop, **options: object) -> list[int]:
    async def listed() -> bytes:
        child = await children.start(
            sys.executable, "-I", "-S", "-c", LIST_FDS, stdout=children.PIPE, **options
        )
        out, _ = await child.communicate()
        assert child.returncode == 0
        return out

    return [int(fd) for fd in loop.run_until_complete(listed()).split()]


def test_a_child_gets_no_fd_but_its_own(loop: asyncio.AbstractEventLoop) -> None:
    inheritable = os.dup(0)
    os.set_inheritable(inheritable, True)
    listener = socket.socket()
    listener.set_inheritable(True)
    try:
        assert _fds_of_child(loop) == [0, 1, 2]
    finally:
        os.close(inheritable)
        listener.close()


def test_pass_fds_are_the_only_others(loop: asyncio.AbstractEventLoop) -> None:
    read, write = os.pipe()
    stray = os.dup(0)
    os.set_inheritable(stray, True)
    try:
        assert _fds_of_child(loop, pass_fds=(write,)) == [0, 1, 2, write]
    finally:
        for fd in (read, write, stray):
            os.close(fd)


def test_input_output_and_exit_code(loop: asyncio.AbstractEventLoop) -> None:
    async def run() -> tuple[bytes, bytes, int | None]:
        child = await children.start(
            "sh",
            "-c",
            "wc -c; echo said >&2; exit 3",
            stdin=children.PIPE,
            stdout=children.PIPE,
            stderr=children.PIPE,
        )
        out, err = await child.communicate(b"x" * 300_000)  # more than a pipe holds
        return out, err, child.returncode

    out, err, code = loop.run_until_complete(run())
    assert (out.strip(), err, code) == (b"300000", b"said\n", 3)


def test_lines_as_they_come_and_a_signal(loop: asyncio.AbstractEventLoop) -> None:
    async def run() -> tuple[bytes, int, int]:
        child = await children.start(
            "sh", "-c", "echo up; exec sleep 60", stdout=children.PIPE, stderr=children.STDOUT
        )
        assert child.stdout is not None
        first = await child.stdout.readline()
        assert child.returncode is None
        child.terminate()
        return first, await child.wait(), await child.wait()

    assert loop.run_until_complete(run()) == (b"up\n", -signal.SIGTERM, -signal.SIGTERM)


def test_a_child_that_ignores_its_input(loop: asyncio.AbstractEventLoop) -> None:
    async def run() -> tuple[bytes, bytes, int | None]:
        child = await children.start("true", stdin=children.PIPE)
        out, err = await child.communicate(b"y" * 1_000_000)
        return out, err, child.returncode

    assert loop.run_until_complete(run()) == (b"", b"", 0)


def test_nothing_to_run_raises(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(FileNotFoundError):
        loop.run_until_complete(children.start("/nonexistent/program"))


def test_a_childs_pipes_are_closed_once_while_other_threads_open_files(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Each end of a child's pipes is closed exactly once: a second close, after its number
    was given to a file another thread opened meanwhile, would close that one instead."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def open_and_read() -> None:
        while not stop.is_set():
            try:
                subprocess.run(["true"], capture_output=True, check=True)
            except BaseException as e:  # a lost pipe shows as EBADF here
                failures.append(e)
                return

    async def many() -> None:
        for _ in range(150):
            child = await children.start("echo", "hi", stdout=children.PIPE, stderr=children.PIPE)
            out, _ = await child.communicate()
            assert out == b"hi\n"

    neighbour = threading.Thread(target=open_and_read)
    neighbour.start()
    try:
        loop.run_until_complete(many())
    finally:
        stop.set()
        neighbour.join()
    assert failures == []
