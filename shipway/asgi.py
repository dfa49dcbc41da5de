"""Serving an ASGI app with uvicorn on an abstract unix socket, started and stopped by the
process that owns it (the control plane's API, a node's control socket)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from email.utils import formatdate
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from shipway.errors import ServiceError


class _Dated(ServerState):
    """uvicorn's shared state, whose default headers (the Date one among them) are made when a
    response asks for them, at most once a second, instead of by a tick every second."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._config = config
        self._second = -1
        self._headers: list[tuple[bytes, bytes]] = []
        super().__init__()

    @property
    def default_headers(self) -> list[tuple[bytes, bytes]]:
        now = int(time.time())
        if now != self._second:
            dated = [(b"date", formatdate(now, usegmt=True).encode())]
            self._headers = (dated if self._config.date_header else []) + list(
                self._config.encoded_headers
            )
            self._second = now
        return self._headers

    @default_headers.setter
    def default_headers(self, _: list[tuple[bytes, bytes]]) -> None:
        """What uvicorn sets (its tick, which never runs here, and the empty start) is made
        on demand instead."""


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling (the process decides when to stop) and without
    its ticks: at rest it does not wake at all."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.server_state = _Dated(config)
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def exit(self) -> None:
        self.should_exit = True
        self._exit.set()

    async def main_loop(self) -> None:
        await self._exit.wait()


async def serve(
    stack: AsyncExitStack,
    app: Any,
    address: str,
    *,
    name: str,
    before_stop: Callable[[], None] = lambda: None,
    **options: Any,
) -> None:
    """Serve APP on ADDRESS until STACK closes; returns once it accepts connections."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen(1024)
    stack.callback(sock.close)
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", proxy_headers=False, **options
    )
    server = _Uvicorn(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=name)

    async def stop() -> None:
        before_stop()
        server.exit()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)

    stack.push_async_callback(stop)
    while not server.started:
        if task.done():
            task.result()
            raise ServiceError(f"the {name} server stopped while starting")
        await asyncio.sleep(0.02)
