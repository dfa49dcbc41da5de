"""Real Temporal and NATS servers for the tests, spawned through shipway's own supervisor (the
`servers` fixture of tests/conftest.py starts them once per test process)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from shipway import natsauth
from shipway.embedded import launch, ports
from shipway.embedded import nats as embedded_nats
from shipway.embedded import temporal as embedded_temporal
from shipway.embedded.process import ProcessSpec, SupervisedProcess
from shipway.links import NatsLink
from shipway.natsauth import Role


@dataclass
class Servers:
    temporal: SupervisedProcess
    nats: SupervisedProcess
    root: Path

    def link(self, role: Role = Role.CONTROL) -> NatsLink:
        """A NATS link (not yet connected) with ROLE's key."""
        return NatsLink(self.nats_url, natsauth.from_data_dir(self.root, role))

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal.spec.ready_port}"

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats.spec.ready_port}"


@contextlib.asynccontextmanager
async def running(root: Path) -> AsyncIterator[Servers]:
    """A Temporal and a NATS server with their data in ROOT, stopped on leaving. They start as
    `shipway up` starts its own: again on other ports when one was taken before its server bound
    it (the embedded Temporal picks inner ports of its own too)."""
    (root / "logs").mkdir()

    def specs(chosen: dict[str, int]) -> list[ProcessSpec]:
        return [
            embedded_temporal.spec(root, chosen["temporal"], chosen["ui"], chosen["http"]),
            embedded_nats.spec(root, chosen["nats"]),
        ]

    _, (temporal, nats) = await launch.start_on_free_ports(
        lambda: {name: ports.any_free() for name in ("temporal", "ui", "http", "nats")}, specs
    )
    try:
        yield Servers(temporal, nats, root)
    finally:
        await nats.stop()
        await temporal.stop()
