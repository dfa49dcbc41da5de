"""The autoscaler on a real store and NATS: a build queued for a pool scaled to zero asks the
pool's command (or webhook, or the builders run here) for a builder; a size is asked for once,
and again at the next look if asking failed."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from nats.js import JetStreamContext

from shipway.accounts.roles import Principal
from shipway.deploys import service
from shipway.fleet import registry
from shipway.fleet.autoscaler import Autoscaler, Sizing
from shipway.fleet.local import LocalBuilders
from shipway.fleet.registry import BuilderRecord
from shipway.fleet.sizing import Policy, PoolLoad
from shipway.links import NatsLink
from shipway.store import Store
from tests.helpers import new_owner

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: how the queue is counted is the load tests' to show on every store."""
    return f"sqlite:///{tmp_path / 'shipway.db'}"


@pytest.fixture
def pool() -> str:
    """A pool of this test's own: the fleet registry is shared by the tests of a process."""
    return f"p-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def owner(store: Store) -> Principal:
    return new_owner(store, *(f"app{n}" for n in range(4)))


def queue(store: Store, owner: Principal, pool: str, builds: int, first: int = 0) -> None:
    """BUILDS builds queued for POOL, one for each app from app<FIRST> on."""
    with store.transaction() as session:
        for n in range(first, first + builds):
            made = service.request(session, owner, f"app{n}", ref=None, sha=None, source="git")
            made.build.pool = pool


def recorder(tmp_path: Path, exit_code: int = 0) -> tuple[str, Path]:
    """A scaling command that writes down its arguments, then exits with EXIT_CODE."""
    calls = tmp_path / "calls"
    script = tmp_path / "scale.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\necho "no capacity"\nexit {exit_code}\n')
    return f"/bin/sh {script}", calls


def calls_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_a_build_queued_for_a_pool_scaled_to_zero_asks_its_command_for_a_builder(
    store: Store, owner: Principal, link: NatsLink, pool: str, tmp_path: Path
) -> None:
    command, calls = recorder(tmp_path)
    scaler = Autoscaler(store, link, {pool: Policy(min=0, max=3, command=command)}, None)
    [idle] = await scaler.step()
    assert idle == Sizing(pool, PoolLoad(0, 0, 0, 0), 0)
    assert calls_of(calls) == [f"{pool} 0"]
    queue(store, owner, pool, builds=1)
    [woken] = await scaler.step()
    assert (woken.desired, woken.load.queued, woken.load.builders) == (1, 1, 0)
    assert calls_of(calls) == [f"{pool} 0", f"{pool} 1"]
    assert scaler.sizing[pool] == woken


async def test_a_size_is_asked_for_once_and_a_new_one_when_the_load_changes(
    store: Store, owner: Principal, link: NatsLink, pool: str, tmp_path: Path
) -> None:
    command, calls = recorder(tmp_path)
    scaler = Autoscaler(store, link, {pool: Policy(min=0, max=3, command=command)}, None)
    queue(store, owner, pool, builds=1)
    await scaler.step()
    await scaler.step()
    assert calls_of(calls) == [f"{pool} 1"]
    queue(store, owner, pool, builds=3, first=1)  # 4 waiting, at 0.7 of 2 slots: 3 builders
    await scaler.step()
    assert calls_of(calls) == [f"{pool} 1", f"{pool} 3"]


async def test_a_failed_command_is_asked_again_at_the_next_look(
    store: Store, owner: Principal, link: NatsLink, pool: str, tmp_path: Path
) -> None:
    command, calls = recorder(tmp_path, exit_code=3)
    scaler = Autoscaler(store, link, {pool: Policy(min=0, max=3, command=command)}, None)
    queue(store, owner, pool, builds=1)
    await scaler.step()
    await scaler.step()
    assert calls_of(calls) == [f"{pool} 1", f"{pool} 1"]


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP endpoint on a loopback port, and the JSON bodies POSTed to it."""
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/scale", bodies
    finally:
        server.shutdown()
        server.server_close()


async def test_a_webhook_is_told_the_pool_its_size_and_its_load(
    store: Store,
    owner: Principal,
    link: NatsLink,
    pool: str,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, bodies = webhook
    scaler = Autoscaler(store, link, {pool: Policy(min=0, max=5, webhook=url)}, None)
    queue(store, owner, pool, builds=2)
    now = time.time()
    await scaler.step(now)
    [body] = bodies
    assert (body["pool"], body["desired"]) == (pool, 2)
    load = body["load"]
    assert (load["builders"], load["slots"], load["busy"], load["queued"]) == (0, 0, 0, 2)
    assert load["oldest_wait"] >= 0


class Kept(LocalBuilders):
    """The builders run here, starting none: what the autoscaler asked them to keep."""

    def __init__(self, data_dir: Path, js: JetStreamContext) -> None:
        super().__init__(data_dir, js, env={})
        self.asked: list[tuple[str, int, int]] = []

    def keep(self, pool: str, count: int, slots: int = 2) -> None:
        super().keep(pool, count, slots)
        self.asked.append((pool, count, slots))


async def test_the_builders_run_here_make_up_what_the_pool_lacks_elsewhere(
    store: Store, owner: Principal, link: NatsLink, pool: str, tmp_path: Path
) -> None:
    now = time.time()
    elsewhere = BuilderRecord(
        id=f"far-{uuid.uuid4().hex[:8]}", pool=pool, slots=2, busy=2, heartbeat_at=now
    )
    await registry.put(link.js, elsewhere)
    try:
        local = Kept(tmp_path, link.js)
        scaler = Autoscaler(store, link, {pool: Policy(min=0, max=5, slots=3)}, local)
        queue(store, owner, pool, builds=2)
        [sized] = await scaler.step(now)
        # 2 busy and 2 queued at 0.7 of 3 slots each: 2 builders, one of them elsewhere.
        assert sized.desired == 2 and sized.load == PoolLoad(1, 2, 2, 2, sized.load.oldest_wait)
        assert local.asked == [(pool, 1, 3)]
    finally:
        await (await registry.bucket(link.js)).delete(elsewhere.id)
