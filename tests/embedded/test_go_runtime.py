"""The embedded Go servers run on half the cores, leaving the rest to builds and apps."""

from __future__ import annotations

import os

import psutil
import pytest

from tests.servers import Servers

pytestmark = pytest.mark.integration


def test_temporal_and_nats_run_go_on_half_the_cores(servers: Servers) -> None:
    half = str(max(1, len(os.sched_getaffinity(0)) // 2))
    for server in (servers.temporal, servers.nats):
        assert server.pid is not None
        assert psutil.Process(server.pid).environ()["GOMAXPROCS"] == half, server.spec.name
