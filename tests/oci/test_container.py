"""An image release's container keeps the sandbox's contract: its output streamed, limits on
memory, processes and time named when hit, root inside an unprivileged uid outside, and a
network of its own that reaches nothing of the host."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shipway.oci import container
from shipway.oci.container import ContainerSpec
from shipway.oci.images import Images
from shipway.oci.podman import Podman
from shipway.sandbox import Limits, SandboxError, SandboxResult, Started
from tests.oci.conftest import debian_tar, tidy  # noqa: F401  (debian_tar: a fixture)
from tests.sandbox.test_network import (  # noqa: F401  (fixtures)
    GREETING,
    host_server,
    no_slirp4netns,
    slirp,
)

IMAGE = "docker.io/library/debian:bookworm-slim"


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory, debian_tar: Path) -> Iterator[Podman]:  # noqa: F811
    """A storage holding debian:bookworm-slim, made from the run's base archive."""
    images = Images(tmp_path_factory.mktemp("containers") / "data")
    asyncio.run(images.import_base("debian:bookworm-slim", debian_tar))
    yield images.podman
    tidy(images)


@dataclass
class Ran:
    result: SandboxResult
    lines: list[str] = field(default_factory=list)
    started: list[Started] = field(default_factory=list)
    uids: list[int] = field(default_factory=list)


async def run(
    podman: Podman, tmp_path: Path, command: str, limits: Limits | None = None, **env: str
) -> Ran:
    name = f"test-{uuid.uuid4().hex[:10]}"
    spec = ContainerSpec(
        name=name,
        image=IMAGE,
        command=command,
        env=env,
        mounts=(),
        limits=limits or Limits(memory_mb=256, processes=64, wall_seconds=60),
        scratch=tmp_path / name,
    )
    lines: list[str] = []
    started: list[Started] = []
    uids: list[int] = []

    def on_started(where: Started) -> None:
        started.append(where)
        with open(f"/proc/{where.pid1}/status") as status:
            uids.extend(int(v) for v in next(s for s in status if s.startswith("Uid:")).split()[1:])

    result = await container.run(podman, spec, lines.append, on_started)
    return Ran(result, lines, started, uids)


async def test_output_exit_and_an_unprivileged_root(podman: Podman, tmp_path: Path) -> None:
    ran = await run(podman, tmp_path, 'echo "hello $WHO"; id -u; echo oops >&2; exit 3', WHO="x\ny")
    assert ran.lines == ["hello x", "y", "0", "oops"]
    assert (ran.result.exit_code, ran.result.reason) == (3, "exited with code 3")
    assert ran.started and ran.started[0].net_namespace.endswith("/ns/net")
    assert min(ran.uids) >= container.FIRST_UID


async def test_the_limits_are_named(podman: Podman, tmp_path: Path) -> None:
    hog = await run(
        podman,
        tmp_path,
        "perl -e '$x = \"a\" x (300 * 1024 * 1024); print length $x'",
        Limits(memory_mb=64, processes=64, wall_seconds=60),
    )
    assert hog.result.reason == "killed: memory limit of 64 MiB exceeded", hog.lines
    slow = await run(podman, tmp_path, "sleep 30", Limits(wall_seconds=1))
    assert slow.result.reason == "killed: timed out after 1 s"
    forks = await run(
        podman,
        tmp_path,
        "for i in $(seq 40); do sleep 5 & done; wait",
        Limits(processes=10, wall_seconds=60),
    )
    assert forks.result.reason == "process limit of 10 reached", forks.lines


async def test_the_network_reaches_nothing_of_the_host(
    podman: Podman,
    tmp_path: Path,
    slirp: None,  # noqa: F811
    host_server: tuple[int, list[str]],  # noqa: F811
) -> None:
    port, addresses = host_server
    targets = [*addresses, "10.0.2.2"]
    probe = "; ".join(
        f"(echo > /dev/tcp/{a}/{port}) 2>/dev/null && echo {a} open || echo {a} closed"
        for a in targets
    )
    ran = await run(podman, tmp_path, f"cat /etc/resolv.conf; {probe}")
    assert ran.lines == ["nameserver 10.0.2.3", *(f"{a} closed" for a in targets)]
    assert GREETING not in "\n".join(ran.lines)


async def test_the_image_runs_its_own_command_until_stopped(podman: Podman, tmp_path: Path) -> None:
    name = f"test-{uuid.uuid4().hex[:10]}"
    spec = ContainerSpec(
        name=name,
        image=IMAGE,
        command="",  # the image's CMD: bash, which ends at once with no input
        env={},
        mounts=(),
        limits=Limits(wall_seconds=math.inf),
        scratch=tmp_path / name,
    )
    ran = await container.run(podman, spec, lambda _: None)
    assert ran.exit_code == 0
    sleeper = asyncio.ensure_future(
        container.run(podman, ContainerSpec(**{**spec.__dict__, "command": "sleep 600"}), print)
    )
    await asyncio.sleep(0)
    while not (await podman.run("ps", "--quiet")).strip():
        await asyncio.sleep(0.05)
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
    assert not (await podman.run("ps", "--all", "--quiet")).strip()


async def test_an_image_no_longer_here_is_named(podman: Podman, tmp_path: Path) -> None:
    spec = ContainerSpec(
        name=f"test-{uuid.uuid4().hex[:10]}",
        image="sha256:" + "0" * 64,
        command="",
        env={},
        mounts=(),
        limits=Limits(),
        scratch=tmp_path / "gone",
    )
    with pytest.raises(SandboxError, match=r"the image sha256:000000000000 is no longer on this"):
        await container.run(podman, spec, print)


async def test_without_slirp4netns_a_container_is_refused_and_none_is_made(
    podman: Podman,
    tmp_path: Path,
    no_slirp4netns: None,  # noqa: F811
) -> None:
    with pytest.raises(SandboxError, match="slirp4netns is not installed"):
        await run(podman, tmp_path, "echo never")
    assert not (await podman.run("ps", "--all", "--quiet")).strip()
