"""Serving an ASGI app with uvicorn on an abstract unix socket, started and stopped by the
process that owns it (the control plane's API, a node's control socket)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import uvicorn

from shipway.errors import ServiceError


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling (the process decides when to stop) and without
    its ten ticks a second: at rest it wakes once a second, to renew its Date header."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def exit(self) -> None:
        self.should_exit = True
        self._exit.set()

    async def main_loop(self) -> None:
        # uvicorn's on_tick renews the Date header when the counter is a multiple of ten
        counter = 0
        while not await self.on_tick(counter):
            counter += 10
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 1.0)


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
