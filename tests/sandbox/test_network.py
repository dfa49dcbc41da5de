"""A sandbox with network reaches the internet, but nothing of the host; one without, nothing."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest

from shipway.sandbox import SandboxError, SandboxSpec, network
from shipway.sandbox.runner import run
from tests.conftest import unavailable
from tests.helpers import hidden_path
from tests.sandbox.conftest import cancel, limits, sandboxed, started

GREETING = "hello from the host"

CONNECT = """
import socket, sys
for address in sys.argv[2:]:
    try:
        with socket.create_connection((address, int(sys.argv[1])), timeout=10) as s:
            print(address, s.recv(100).decode().strip(), flush=True)
    except OSError as e:
        print(address, "failed:", e, flush=True)
"""

PYPI = "https://pypi.org/simple/pip/"


@pytest.fixture
def slirp() -> None:
    if network.state().slirp4netns is None:
        unavailable("slirp4netns is not installed (or /dev/net/tun is not usable)")


@pytest.fixture
async def host_server() -> AsyncIterator[tuple[int, list[str]]]:
    """A TCP server on all the host's addresses: its port, and loopback plus the host's own
    outward address, both of which reach it from the host."""

    async def greet(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(f"{GREETING}\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "0.0.0.0", 0)
    port = server.sockets[0].getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.254", 9))  # no packet is sent: this picks the outward address
        outward = probe.getsockname()[0]
    addresses = ["127.0.0.1", outward]
    async with server:
        for address in addresses:
            reader, writer = await asyncio.open_connection(address, port)
            assert (await reader.readline()).decode().strip() == GREETING
            writer.close()
        yield port, addresses


@pytest.fixture
def internet() -> None:
    try:
        urllib.request.urlopen(PYPI, timeout=20).close()
    except OSError as e:
        unavailable(f"this machine cannot reach {PYPI}: {e}")


def slirps() -> list[psutil.Process]:
    """This process's slirp4netns children: one for each networked sandbox running."""
    return [p for p in psutil.Process().children() if p.name() == "slirp4netns"]


async def test_network_cannot_reach_the_host(
    workspace: Path, slirp: None, host_server: tuple[int, list[str]]
) -> None:
    port, addresses = host_server
    (workspace / "connect.py").write_text(CONNECT)
    targets = [*addresses, "10.0.2.2"]  # slirp4netns's gateway is the host's loopback
    # The routes that keep the host out cannot be taken away from inside.
    script = (
        f"for a in {' '.join(targets)}; do ip route del unreachable $a 2>/dev/null; done; "
        f"exec python3 connect.py {port} {' '.join(targets)}"
    )
    for networked in (True, False):
        ran = await sandboxed(workspace, script, network=networked)
        assert ran.result.reason is None, ran.output
        assert GREETING not in ran.output
        assert [line.split()[:2] for line in ran.lines] == [[a, "failed:"] for a in targets]


async def test_network_reaches_the_internet(workspace: Path, slirp: None, internet: None) -> None:
    fetch = f"import urllib.request; urllib.request.urlopen('{PYPI}', timeout=20); print('fetched')"
    script = (
        f'cat /etc/resolv.conf; python3 -c "{fetch}" && '
        "python3 -m pip download --no-deps --no-cache-dir --disable-pip-version-check "
        "-q -d /tmp/downloads pip && ls /tmp/downloads"
    )
    online = await sandboxed(workspace, script, network=True)
    assert online.result.reason is None, online.output
    assert online.lines[0] == "nameserver 10.0.2.3"
    assert "fetched" in online.lines
    assert any(line.startswith("pip-") and line.endswith(".whl") for line in online.lines)
    offline = await sandboxed(workspace, f'python3 -c "{fetch}"', network=False)
    assert offline.result.exit_code != 0 and "fetched" not in offline.lines


@pytest.mark.parametrize("ending", ["exit", "timeout", "cancel"])
async def test_no_slirp4netns_outlives_its_sandbox(
    workspace: Path, slirp: None, ending: str
) -> None:
    assert slirps() == []
    script = "echo ready; while [ ! -e /workspace/go ]; do sleep 0.05; done"
    if ending != "exit":
        script = "echo ready; exec sleep 1000"
    task, _ = await started(
        workspace, script, limits=limits(wall_seconds=5 if ending == "timeout" else 60)
    )
    running = slirps()
    assert len(running) == 1
    if ending == "cancel":
        await cancel(task)
    else:
        (workspace / "go").touch()
        result = await task
        if ending == "exit":
            assert result.reason is None, result
        else:
            assert result.reason is not None and result.reason.startswith("killed: timed out")
    assert not running[0].is_running()
    assert slirps() == []


@pytest.fixture
def no_slirp4netns(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """slirp4netns hidden from PATH, as on a host that lacks it."""
    monkeypatch.setenv("PATH", hidden_path("slirp4netns"))
    network.state.cache_clear()
    yield
    monkeypatch.undo()
    network.allow_shared(False)


def test_without_slirp4netns_the_state_says_what_is_missing(no_slirp4netns: None) -> None:
    state = network.state()
    assert state.isolation is network.Isolation.UNAVAILABLE
    assert state.describe().startswith("unavailable")
    assert "slirp4netns is not installed" in state.describe()
    assert "apt-get install -y slirp4netns" in state.describe()


async def test_without_slirp4netns_a_networked_sandbox_is_refused(
    workspace: Path, no_slirp4netns: None, host_server: tuple[int, list[str]]
) -> None:
    port, _ = host_server
    (workspace / "connect.py").write_text(CONNECT)
    with pytest.raises(SandboxError) as refused:
        await sandboxed(workspace, f"exec python3 connect.py {port} 127.0.0.1")
    assert "slirp4netns is not installed" in refused.value.message
    assert "apt-get install -y slirp4netns" in refused.value.message
    # Without network it runs as ever, and reaches nothing.
    ran = await sandboxed(workspace, f"exec python3 connect.py {port} 127.0.0.1", network=False)
    assert ran.lines == ["127.0.0.1 failed: [Errno 111] Connection refused"]  # its own loopback


async def test_the_host_network_is_shared_only_when_the_operator_says_so(
    workspace: Path, no_slirp4netns: None, host_server: tuple[int, list[str]]
) -> None:
    port, _ = host_server
    (workspace / "connect.py").write_text(CONNECT)
    shared = SandboxSpec(
        argv=["python3", "connect.py", str(port), "127.0.0.1"],
        workspace=workspace,
        host_network=True,
    )
    with pytest.raises(SandboxError, match="--unsafe-shared-network"):
        await run(shared, lambda _: None)
    network.allow_shared(True)
    assert network.state().isolation is network.Isolation.UNSAFE
    assert network.state().describe().startswith("UNSAFE")
    ran = await sandboxed(workspace, f"exec python3 connect.py {port} 127.0.0.1")
    assert ran.lines == [f"127.0.0.1 {GREETING}"]
