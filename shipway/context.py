"""What the API needs at run time: the store, the Temporal and NATS links, and their health."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client as TemporalClient

from shipway.accounts.tokencache import TokenCache
from shipway.addons.servers import Servers
from shipway.embedded.process import SupervisedProcess
from shipway.fleet.autoscaler import Autoscaler
from shipway.fleet.dispatch import Rules
from shipway.fleet.member import Builder
from shipway.functions.invoke import Invoker
from shipway.links import NatsLink, temporal_ok
from shipway.nodes.client import NodeClient
from shipway.sandbox import network
from shipway.settings import Settings
from shipway.store import Store
from shipway.workers import Workers, run_probe

#: Seconds a health report serves /metrics before the parts are checked again.
HEALTH_MAX_AGE = 10.0


@dataclass
class Context:
    """The live parts of one shipway process. Temporal and NATS are None in API-only tests."""

    settings: Settings
    store: Store
    temporal: TemporalClient | None = None
    nats: NatsLink | None = None
    workers: Workers | None = None
    builders: list[Builder] = field(default_factory=list)
    #: This machine's node (the data plane), which runs the apps; None in API-only tests.
    runtime: NodeClient | None = None
    #: Calls functions; None where functions do not run (API-only tests).
    invoker: Invoker | None = None
    processes: dict[str, SupervisedProcess] = field(default_factory=dict)
    #: The add-on servers of the data dir; None in API-only tests.
    addons: Servers | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    #: The principals of the bearer secrets seen a moment ago.
    tokens: TokenCache = field(init=False)
    #: Which pool builds which app, and how big each pool should be.
    rules: Rules = field(default_factory=Rules)
    #: Sizes the pools that have a policy; None without any.
    autoscaler: Autoscaler | None = None
    #: Set when the server starts to stop: streams that would follow forever end.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    #: The last health report for /metrics, with when it was made, and the check under way.
    _recent: tuple[float, dict[str, Any]] | None = field(default=None, init=False, repr=False)
    _checking: asyncio.Future[dict[str, Any]] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.tokens = TokenCache(self.store)

    async def recent_health(self, max_age: float = HEALTH_MAX_AGE) -> dict[str, Any]:
        """The health report, made at most MAX_AGE seconds ago: however often Prometheus
        scrapes, the parts are checked once per MAX_AGE, and scrapes at once share a check."""
        if self._recent is not None and time.monotonic() - self._recent[0] < max_age:
            return self._recent[1]
        if self._checking is None or self._checking.done():
            self._checking = asyncio.ensure_future(self.health())
        report = await asyncio.shield(self._checking)
        self._recent = (time.monotonic(), report)
        return report

    async def health(self, deep: bool = False) -> dict[str, Any]:
        """Each part's state; the whole is "ok" only when every part is.

        DEEP also runs a probe workflow through the control workers, proving them end to end.
        """
        store, temporal, nats = await asyncio.gather(
            self._store_health(), self._temporal_health(deep), self._nats_health()
        )
        parts = {"store": store, "temporal": temporal, "nats": nats}
        addons = self._addons_health()
        if addons is not None:
            parts["addons"] = addons
        status = "ok" if all(p["status"] == "ok" for p in parts.values()) else "degraded"
        return {
            "status": status,
            "components": parts,
            "sandbox_network": network.state().as_dict(),
        }

    async def _store_health(self) -> dict[str, Any]:
        try:
            await asyncio.to_thread(self.store.ping)
        except Exception as e:
            return {"status": "down", "backend": self.store.dialect, "error": str(e)[:200]}
        return {"status": "ok", "backend": self.store.dialect}

    def _process_part(self, name: str) -> dict[str, Any]:
        part: dict[str, Any] = {"address": self.addresses.get(name)}
        proc = self.processes.get(name)
        if proc is None:
            part["embedded"] = False
        else:
            part.update(
                embedded=True, process=proc.state.value, pid=proc.pid, restarts=proc.restarts
            )
        return part

    async def _temporal_health(self, deep: bool) -> dict[str, Any]:
        part = self._process_part("temporal")
        if "temporal_ui" in self.addresses:
            part["ui"] = self.addresses["temporal_ui"]
        proc = self.processes.get("temporal")
        client = self.temporal
        up = client is not None and (proc is None or proc.healthy) and await temporal_ok(client)
        part["workers"] = "running" if self.workers and self.workers.running else "stopped"
        part["builders"] = sum(1 for b in self.builders if b.running)
        if deep and up and client is not None and self.workers is not None:
            probe = await run_probe(client, self.workers.task_queue)
            part["probe"] = probe
            up = probe["status"] == "ok"
        part["status"] = "ok" if up else "down"
        return part

    def _addons_health(self) -> dict[str, Any] | None:
        """The add-on servers, once there is any: "down" while one of them is. Reads what they
        said last, so asking costs no I/O."""
        servers = self.addons.status() if self.addons is not None else {}
        if not servers:
            return None
        up = all(server["up"] for server in servers.values())
        names = ", ".join(f"{name} {'up' if s['up'] else 'DOWN'}" for name, s in servers.items())
        return {"status": "ok" if up else "down", "address": names, "servers": servers}

    async def _nats_health(self) -> dict[str, Any]:
        part = self._process_part("nats")
        proc = self.processes.get("nats")
        up = self.nats is not None and (proc is None or proc.healthy) and await self.nats.ok()
        part["status"] = "ok" if up else "down"
        return part
