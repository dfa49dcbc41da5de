"""Fixtures: uvicorn upstreams shared by the whole test run, a fresh router per test. The
router's tests run on uvloop, the loop the node runs it on."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from shipway.router import Route, Router, RouteTable, TcpUpstream, UnixUpstream
from tests.helpers import on_the_nodes_loop as pytest_asyncio_loop_factories  # noqa: F401
from tests.router.servers import AppServer, listening, start_app


@pytest.fixture(scope="session")
def socket_dir() -> Iterator[Path]:
    """A short directory for unix sockets (their paths are limited to about 100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="shipway-router-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture(scope="session")
async def control(socket_dir: Path) -> AsyncIterator[AppServer]:
    """The control plane's stand-in, on a unix socket as in production."""
    path = str(socket_dir / "control.sock")
    server = await start_app("control", listening(socket.AF_UNIX, path))
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="session")
async def web() -> AsyncIterator[list[AppServer]]:
    """Three instances of an app, web.1 to web.3."""
    servers = [await start_app(f"web.{i}") for i in (1, 2, 3)]
    yield servers
    for server in servers:
        await server.stop()


@dataclass
class Proxy:
    """A running router, its table and how to reach it."""

    router: Router
    table: RouteTable
    port: int
    control_path: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10.0, **kwargs)

    def add(self, host: str, *upstreams: TcpUpstream, **kwargs: Any) -> Route:
        route = Route(
            app=host.split(".")[0], environment="production", upstreams=upstreams, **kwargs
        )
        self.table.switch(host, route)
        return route


MakeProxy = Callable[..., Any]


@pytest_asyncio.fixture
async def make_proxy(control: AppServer, socket_dir: Path) -> AsyncIterator[MakeProxy]:
    """Start routers with the given limits; each is stopped after the test."""
    started = []

    async def make(**limits: Any) -> Proxy:
        path = str(socket_dir / "control.sock")
        table = RouteTable()
        router = Router(table, UnixUpstream(path, name="control"), "localhost", **limits)
        server = await router.serve(listening())
        started.append((router, server))
        port = int(server.sockets[0].getsockname()[1])
        return Proxy(router, table, port, path)

    yield make
    for router, server in started:
        server.close()
        router.close()


@pytest_asyncio.fixture
async def proxy(make_proxy: MakeProxy) -> Proxy:
    """A router with small limits, so the limit tests stay fast."""
    result: Proxy = await make_proxy(
        max_header_bytes=4096, max_body_bytes=200_000, upstream_timeout=5.0
    )
    return result


def upstream(server: AppServer) -> TcpUpstream:
    """A fresh Upstream for SERVER, named after its app."""
    return TcpUpstream("127.0.0.1", server.port, name=server.app.name)
