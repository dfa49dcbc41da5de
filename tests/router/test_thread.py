"""The router on a thread and an event loop of its own, as the node runs it."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import httpx

from shipway.router import Route, Router, RouteTable, UnixUpstream
from shipway.router.thread import RouterThread
from tests.router.conftest import upstream
from tests.router.servers import AppServer, listening


async def test_serves_from_its_thread_and_wakes_apps_on_the_home_loop(
    control: AppServer, socket_dir: Path, web: list[AppServer]
) -> None:
    table = RouteTable()
    router = Router(table, UnixUpstream(str(socket_dir / "control.sock")), "localhost")
    sock = listening()
    port = sock.getsockname()[1]
    serving = RouterThread(router, sock)
    await serving.start()
    home = asyncio.get_running_loop()
    woken_on: list[tuple[asyncio.AbstractEventLoop, threading.Thread]] = []

    async def wake() -> None:
        woken_on.append((asyncio.get_running_loop(), threading.current_thread()))
        table.switch("sleepy.localhost", Route("sleepy", "production", (upstream(web[1]),)))

    table.switch("myapp.localhost", Route("myapp", "production", (upstream(web[0]),)))
    table.switch("sleepy.localhost", Route("sleepy", "production", waker=wake))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            app = await client.get("/", headers={"Host": "myapp.localhost"})
            woken = await client.get("/", headers={"Host": "sleepy.localhost"})
            api = await client.get("/api")
    finally:
        await serving.stop()
    assert app.json()["server"] == "web.1"
    assert woken.json()["server"] == "web.2"
    assert api.json()["server"] == "control"
    assert woken_on == [(home, threading.main_thread())]
    with socket.socket() as probe:  # stopped: nothing accepts on the port any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0
