"""`shipway node`: this machine's data plane, in a process of its own.

It serves the public port (the router) and runs the app instances; it takes deploys as the
Temporal worker of the node queue and the control plane's other requests on its private
socket (shipway.nodes.control). The control plane starts it and, when the control plane is
killed or stopped for an upgrade, it goes on serving: its Temporal and NATS clients reconnect
when those come back, and requests for the API meanwhile get a 502 naming the control plane.
It stops, taking its instances with it, on SIGTERM or SIGINT (`shipway down`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TextIO

from shipway import __version__, asgi, natsauth, subscribers, tracing
from shipway.datadir import DataDir, hold, write_private
from shipway.errors import ServiceError
from shipway.links import NatsLink, connect_temporal, temporal_security
from shipway.nodes import client, control
from shipway.router import Router, RouteTable, UnixUpstream
from shipway.runtime.activities import RuntimeActivities
from shipway.runtime.agent import Runtime
from shipway.runtime.messages import NODE_QUEUE
from shipway.runtime.prelaunch import Prelaunch
from shipway.sandbox import network
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.types import utcnow
from shipway.workers import Workers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Links:
    """Where the control plane's services are, as the control plane said."""

    temporal: str
    nats: str
    #: The already bound, listening public socket, handed over by the control plane.
    listen_fd: int


def lock(data: DataDir) -> TextIO:
    """One node per data dir: held for the life of the node process."""
    handle = hold(data.node_lock)
    if handle is None:
        raise ServiceError(f"a node already runs for data dir {data.root}")
    return handle


class Node:
    """Runs the data plane until SIGTERM or SIGINT."""

    def __init__(self, settings: Settings, links: Links) -> None:
        self.settings = settings
        self.links = links
        self.data = DataDir(settings.data_dir)
        self._stop = asyncio.Event()

    async def run(self) -> None:
        tracing.setup("node")
        held = lock(self.data)
        subscribers.record_events()
        network.allow_shared(self.settings.unsafe_shared_network)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop.set)
        try:
            async with AsyncExitStack() as stack:
                await self._start(stack)
                await self._stop.wait()
                log.info("node stopping")
        finally:
            self.data.node_state.unlink(missing_ok=True)
            held.close()

    async def _start(self, stack: AsyncExitStack) -> None:
        settings = self.settings
        listener = socket.socket(fileno=self.links.listen_fd)
        stack.callback(listener.close)
        store = Store(settings.store_url)
        stack.callback(store.close)
        link = NatsLink(self.links.nats, natsauth.own(self.settings, natsauth.Role.NODE))
        await link.connect()
        stack.push_async_callback(link.close)
        table = RouteTable()
        runtime = Runtime(
            store,
            self.data.root,
            table,
            base_domain=settings.base_domain,
            js=link.js,
            release_timeout=settings.release_timeout,
        )
        stack.push_async_callback(runtime.close)
        temporal = await connect_temporal(
            self.links.temporal, settings.temporal_namespace, **temporal_security(settings)
        )
        prelaunch = Prelaunch(runtime, link)
        await prelaunch.start()
        stack.push_async_callback(prelaunch.close)
        activities = RuntimeActivities(runtime)
        workers = Workers(
            temporal,
            NODE_QUEUE,
            workflows=[],
            activities=activities.all(),
        )
        workers.start()
        stack.push_async_callback(workers.stop)
        await self._serve_router(stack, table, listener)
        restored = await runtime.reconcile()
        if restored:
            log.info("routing %d live deployments", restored)
        info = {
            "pid": os.getpid(),
            "version": __version__,
            "port": settings.port,
            "host": settings.host,
            "base_domain": settings.base_domain,
            "temporal": self.links.temporal,
            "nats": self.links.nats,
            "started_at": utcnow().isoformat(),
        }
        await self._serve_control(stack, runtime, info)
        write_private(self.data.node_state, json.dumps(info) + "\n")

    async def _serve_router(
        self, stack: AsyncExitStack, table: RouteTable, listener: socket.socket
    ) -> None:
        api = UnixUpstream(client.api_socket_name(str(self.data.root)), name="control plane")
        router = Router(table, api, self.settings.base_domain)
        server = await router.serve(listener)

        async def stop_router() -> None:
            server.close()
            router.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

        stack.push_async_callback(stop_router)

    async def _serve_control(
        self, stack: AsyncExitStack, runtime: Runtime, info: dict[str, Any]
    ) -> None:
        address = client.socket_name(str(self.data.root))
        await asgi.serve(stack, control.app(runtime, info), address, name="node control")
