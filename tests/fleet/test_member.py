"""A builder in the fleet, on a real Temporal and NATS: it heartbeats its record into the
registry; a drain asked through the fleet, or its process told to stop, makes it stop taking
builds and say draining, then drained; a NATS it cannot reach does not keep it from draining."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from nats.js import JetStreamContext
from temporalio.client import Client

from shipway import __version__
from shipway.fleet import registry
from shipway.fleet.lifecycle import BuilderState
from shipway.fleet.member import Builder, serve
from shipway.links import connect_temporal
from shipway.store import Store
from tests.servers import Servers

pytestmark = pytest.mark.integration

#: Long enough for anything that should happen at once on a busy machine.
PATIENCE = 60.0


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: a builder that runs no build reads nothing of the store."""
    return f"sqlite:///{tmp_path / 'shipway.db'}"


@pytest.fixture(autouse=True)
def _heartbeat_often(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fleet heartbeat each second rather than three: a drain is seen sooner."""
    monkeypatch.setattr(registry, "HEARTBEAT_EVERY", 1.0)


@pytest_asyncio.fixture
async def client(servers: Servers) -> Client:
    return await connect_temporal(servers.temporal_address, "default")


@pytest_asyncio.fixture
async def make(
    client: Client, store: Store, js: JetStreamContext, tmp_path: Path
) -> AsyncIterator[Callable[[JetStreamContext], Builder]]:
    """Builders of a pool of their own, started, heartbeating through the JetStream they are
    given; each is drained at the end if still running, and its record removed."""
    made: list[Builder] = []

    def builder(js: JetStreamContext) -> Builder:
        suffix = uuid.uuid4().hex[:8]
        started = Builder(
            client,
            store,
            tmp_path / "data",
            js,
            pool=f"p-{suffix}",
            labels={"disk": "ssd"},
            slots=3,
            graceful=5,
            name=f"host.test/{suffix}",
        )
        started.start()
        made.append(started)
        return started

    yield builder
    for started in made:
        with contextlib.suppress(Exception):
            await started.stop()
        await (await registry.bucket(js)).delete(started.id)


async def until(check: Callable[[], Any], what: str) -> Any:
    """CHECK's first true value (awaited if it is awaitable), asked until PATIENCE runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while loop.time() < deadline:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


async def test_a_started_builder_heartbeats_its_record_into_the_fleet(
    js: JetStreamContext, make: Callable[[JetStreamContext], Builder]
) -> None:
    builder = make(js)
    assert builder.id.startswith("host-test-")
    first = await until(lambda: registry.get(js, builder.id), "the builder's first record")
    assert (first.pool, first.labels, first.slots) == (builder.pool, {"disk": "ssd"}, 3)
    assert (first.busy, first.state, first.version) == (0, "active", __version__)
    assert first.started_at == builder.started_at

    async def fresher() -> registry.BuilderRecord | None:
        record = await registry.get(js, builder.id)
        return record if record and record.heartbeat_at > first.heartbeat_at else None

    await until(fresher, "a later heartbeat")
    await until(lambda: builder.running, "the builder's workers to run")


@contextlib.asynccontextmanager
async def watching(js: JetStreamContext, builder_id: str) -> AsyncIterator[list[str]]:
    """The states BUILDER_ID's record takes while inside, each change once, as they come."""
    watcher = await (await registry.bucket(js)).watch(builder_id)
    seen: list[str] = []

    async def collect() -> None:
        async for entry in watcher:
            if entry is not None and entry.value:
                state = json.loads(entry.value)["state"]
                if not seen or seen[-1] != state:
                    seen.append(state)

    collecting = asyncio.ensure_future(collect())
    try:
        yield seen
    finally:
        await watcher.stop()
        await collecting


async def test_a_drain_asked_through_the_fleet_drains_the_builder_and_it_says_so(
    js: JetStreamContext, make: Callable[[JetStreamContext], Builder]
) -> None:
    builder = make(js)
    await until(lambda: registry.get(js, builder.id), "the builder's first record")
    async with watching(js, builder.id) as seen:
        await registry.request_drain(js, builder.id)
        async with asyncio.timeout(PATIENCE):
            await builder.wait()
        await until(lambda: seen[-1:] == ["drained"], "the drained record")
    assert seen == ["active", "draining", "drained"]
    assert builder.state is BuilderState.DRAINED and not builder.running
    record = await registry.get(js, builder.id)
    assert record is not None and record.state == "drained"
    assert not await registry.drain_requested(js, builder.id), "the request is forgotten"


async def test_a_builder_told_to_stop_drains_once_however_often_told(
    js: JetStreamContext, make: Callable[[JetStreamContext], Builder]
) -> None:
    builder = make(js)
    await until(lambda: builder.running, "the builder's workers to run")
    stop = asyncio.Event()
    stop.set()  # SIGTERM
    async with asyncio.timeout(PATIENCE):
        await serve(builder, stop)
    assert builder.state is BuilderState.DRAINED and not builder.running
    drained = await registry.get(js, builder.id)
    assert drained is not None and drained.state == "drained"
    await builder.stop()
    again = await registry.get(js, builder.id)
    assert again == drained, "a second stop tells the fleet nothing more"


async def test_a_builder_drains_even_when_nats_is_out_of_reach(
    servers: Servers, js: JetStreamContext, make: Callable[[JetStreamContext], Builder]
) -> None:
    own = servers.link()
    await own.connect()
    builder = make(own.js)
    await until(lambda: registry.get(js, builder.id), "the builder's first record")
    await own.close()
    async with asyncio.timeout(PATIENCE):
        await builder.stop()
    assert builder.state is BuilderState.DRAINED and not builder.running
    record = await registry.get(js, builder.id)
    assert record is not None and record.state == "active", "it could not say it drained"


async def test_a_heartbeat_whose_cancel_is_lost_still_ends_and_the_drain_with_it(
    js: JetStreamContext,
    make: Callable[[JetStreamContext], Builder],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On Python 3.11, a cancel that lands as an awaited NATS request completes can be lost
    (inside asyncio.wait_for): the heartbeat's put then returns as if nothing happened. The
    drain does not wait for that heartbeat forever, and it ends at its next beat."""
    builder = make(js)
    await until(lambda: registry.get(js, builder.id), "the builder's first record")
    put = builder._put
    putting = asyncio.Event()

    async def losing_the_cancel() -> None:
        if putting.is_set():
            return await put()
        putting.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(PATIENCE)
        await put()

    monkeypatch.setattr(builder, "_put", losing_the_cancel)
    await until(putting.is_set, "a heartbeat's put")
    stopping = asyncio.ensure_future(builder.stop())
    await asyncio.wait({stopping}, timeout=PATIENCE)  # not cancelled if it takes longer
    assert stopping.done(), "the drain waited for the heartbeat"
    stopping.result()
    assert builder.state is BuilderState.DRAINED
    beating = builder._beating
    assert beating is not None
    await until(beating.done, "the heartbeat to end")
