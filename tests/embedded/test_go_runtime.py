"""The embedded Go servers run on half the cores, leaving the rest to builds and apps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.servers import Servers

pytestmark = pytest.mark.integration


def environment(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(pair.decode().split("=", 1) for pair in pairs if b"=" in pair)


def test_temporal_and_nats_run_go_on_half_the_cores(servers: Servers) -> None:
    half = str(max(1, len(os.sched_getaffinity(0)) // 2))
    for server in (servers.temporal, servers.nats):
        assert server.pid is not None
        assert environment(server.pid)["GOMAXPROCS"] == half, server.spec.name
