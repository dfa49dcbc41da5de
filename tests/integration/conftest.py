"""Real Temporal and NATS servers, spawned through shipway's own supervisor, once per session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from shipway import natsauth
from shipway.embedded import nats as embedded_nats
from shipway.embedded import ports
from shipway.embedded import temporal as embedded_temporal
from shipway.embedded.process import SupervisedProcess
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


@pytest_asyncio.fixture(scope="session")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Servers]:
    root = tmp_path_factory.mktemp("servers")
    (root / "logs").mkdir()
    chosen = {name: ports.any_free() for name in ("temporal", "ui", "http", "nats")}
    temporal = SupervisedProcess(
        embedded_temporal.spec(root, chosen["temporal"], chosen["ui"], chosen["http"])
    )
    nats = SupervisedProcess(embedded_nats.spec(root, chosen["nats"]))
    await temporal.start()
    await nats.start()
    yield Servers(temporal, nats, root)
    await nats.stop()
    await temporal.stop()
