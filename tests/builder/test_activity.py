"""The build activity as a builder runs it, on a real store, NATS and sandbox: a build ends in
layers and a log; one that ended before it started, or cannot be built, is not retried; one
cancelled or taken over while it runs stops its sandbox and says why, or says nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from nats.js import JetStreamContext
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from shipway.accounts.roles import Principal
from shipway.builder.activity import BuilderActivities
from shipway.builder.messages import FAILURE_TYPE, BuildInput, builder_queue, own_queue
from shipway.builder.records.local import LocalRecords
from shipway.builder.records.remote import RemoteRecords
from shipway.deploys import service
from shipway.fleet import affinity
from shipway.fleet.slots import SharedSlots
from shipway.logs import bus, ensure_streams
from shipway.releases.layers import LayerStore
from shipway.store import Store
from shipway.store.tables import Build, LogLine
from tests.builder.conftest import ControlPlane, Pushed, node_app, push, set_config, tar_of
from tests.helpers import sandboxed
from tests.servers import Servers

pytestmark = pytest.mark.integration

#: An install that sleeps until it is stopped: `sleep 313` in a sandbox is this module's.
SLOW = node_app("s", scripts={"postinstall": "sleep 313"})

#: Long enough for anything that should happen at once on a busy machine.
PATIENCE = 60.0


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what is built does not depend on the store, and builds take a while."""
    return f"sqlite:///{tmp_path / 'shipway.db'}"


@pytest_asyncio.fixture
async def js(servers: Servers) -> AsyncIterator[JetStreamContext]:
    """NATS with the LOGS stream, holding no build's lines from before (build ids repeat
    from one test's store to the next)."""
    link = servers.link()
    await link.connect()
    await ensure_streams(link.js)
    await link.js.purge_stream(bus.STREAM, subject="logs.build.>")
    yield link.js
    await link.js.purge_stream(bus.STREAM, subject="logs.build.>")
    await link.close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def builder(store: Store, data: Path, js: JetStreamContext) -> BuilderActivities:
    return BuilderActivities(store, data, js, name="b-test")


def attempt(number: int = 1, queue: str = builder_queue("default")) -> ActivityEnvironment:
    """Temporal's activity context for attempt NUMBER of a build task taken from QUEUE."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, activity_id="build", attempt=number, task_queue=queue)
    return env


def task(pushed: Pushed, files: dict[str, str] | bytes, where: Path) -> BuildInput:
    """The build task of PUSHED, its source archive (FILES) written in WHERE."""
    source = where / f"source-{pushed.build_id}.tar"
    source.write_bytes(files if isinstance(files, bytes) else tar_of(files))
    return BuildInput(
        build_id=pushed.build_id,
        deployment_id=pushed.deployment_id,
        app_id=pushed.app_id,
        app="web",
        source_path=str(source),
        wall_seconds=120,
    )


def log_of(store: Store, build_id: int) -> list[str]:
    with store.transaction() as session:
        return list(
            session.scalars(
                select(LogLine.line)
                .where(LogLine.kind == "build", LogLine.owner_id == build_id)
                .order_by(LogLine.seq)
            )
        )


async def until(condition: Callable[[], Any], what: str) -> Any:
    """CONDITION's first true value, checked until PATIENCE runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while loop.time() < deadline:
        found = await asyncio.to_thread(condition)
        if found:
            return found
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def sleepers() -> list[int]:
    return sandboxed("sleep", "313")


async def test_a_static_site_is_built_into_layers_and_its_log_ends_in_success(
    store: Store, owner: Principal, builder: BuilderActivities, data: Path, tmp_path: Path
) -> None:
    pushed = push(store, owner)
    files = {"index.html": "<h1>hi", "css/site.css": "h1 {}"}
    output = await attempt().run(builder.build, task(pushed, files, tmp_path))
    assert output.builder == "b-test" and output.cache_warm is False
    assert output.manifest["stack"] == "static" and output.manifest["static_root"] == "."
    [app_layer] = output.manifest["layers"]
    layer = LayerStore(data / "layers").path(app_layer["digest"])
    assert (layer / "css" / "site.css").read_text() == "h1 {}"
    log = log_of(store, pushed.build_id)
    assert log[:2] == ["-----> Building on b-test", "-----> static app detected (static)"]
    assert log[-1].startswith("-----> Build succeeded")
    # Whether the deployment goes live is the workflow's to say; the builder holds the build.
    assert LocalRecords(store, data).standing(pushed.build_id) == ("building", "build.1")
    assert builder.running == 0


async def test_a_build_superseded_before_it_starts_is_not_retried_and_logs_nothing(
    store: Store, owner: Principal, builder: BuilderActivities, tmp_path: Path
) -> None:
    first = push(store, owner)
    push(store, owner)
    with pytest.raises(ApplicationError) as raised:
        await attempt().run(builder.build, task(first, {"index.html": "x"}, tmp_path))
    assert raised.value.non_retryable and raised.value.type == FAILURE_TYPE
    assert raised.value.message == "the build was superseded before it started"
    assert log_of(store, first.build_id) == []


async def test_a_retried_build_says_why_the_earlier_attempt_did_not_finish(
    store: Store, owner: Principal, builder: BuilderActivities, data: Path, tmp_path: Path
) -> None:
    pushed = push(store, owner)
    LocalRecords(store, data).begin(pushed.build_id, pushed.deployment_id, "build.1", "b-lost")
    await attempt(2).run(builder.build, task(pushed, {"index.html": "x"}, tmp_path))
    assert log_of(store, pushed.build_id)[0] == (
        "-----> Retrying the build on b-test: "
        "the attempt on b-lost did not finish (stopped or cut off)"
    )
    assert LocalRecords(store, data).standing(pushed.build_id) == ("building", "build.2")


async def test_a_source_that_cannot_be_unpacked_fails_without_retry_and_says_why(
    store: Store, owner: Principal, builder: BuilderActivities, tmp_path: Path
) -> None:
    pushed = push(store, owner)
    with pytest.raises(ApplicationError) as raised:
        await attempt().run(builder.build, task(pushed, b"not a tar at all", tmp_path))
    assert raised.value.non_retryable and raised.value.type == FAILURE_TYPE
    assert "the source archive cannot be unpacked" in raised.value.message
    assert log_of(store, pushed.build_id)[-1] == f"-----> Build failed: {raised.value.message}"


async def test_the_apps_secrets_are_masked_in_the_build_log(
    store: Store, owner: Principal, builder: BuilderActivities, data: Path, tmp_path: Path
) -> None:
    set_config(store, owner, data, "web", {"API_TOKEN": "hunter2-xyz"}, secret=True)
    pushed = push(store, owner)
    files = {"index.html": "x", "shipway.yml": "build:\n  private: [hunter2-xyz]\n"}
    with pytest.raises(ApplicationError) as raised:
        await attempt().run(builder.build, task(pushed, files, tmp_path))
    log = log_of(store, pushed.build_id)
    assert log[-1].startswith("-----> Build failed: shipway.yml: build.private names unknown")
    assert "***" in log[-1] and not any("hunter2" in line for line in log)
    # The failure becomes the deployment's reason: masked too, with no unmasked cause behind.
    assert "***" in raised.value.message and "hunter2" not in raised.value.message
    assert raised.value.__cause__ is None


async def test_cancelling_a_running_build_stops_its_sandbox_and_says_it_was_cancelled(
    store: Store, owner: Principal, builder: BuilderActivities, tmp_path: Path
) -> None:
    pushed = push(store, owner)
    running = asyncio.ensure_future(attempt().run(builder.build, task(pushed, SLOW, tmp_path)))
    await until(sleepers, "the slow install to start")
    with store.transaction() as session:
        service.cancel_build(session, owner, pushed.build_id)
    with pytest.raises(ApplicationError) as raised:
        await running
    assert raised.value.non_retryable and raised.value.type == FAILURE_TYPE
    assert raised.value.message == "the build was cancelled"
    await until(lambda: not sleepers(), "the cancelled build's sandbox to go")
    assert not any("Build succeeded" in line for line in log_of(store, pushed.build_id))


async def test_a_build_taken_over_by_another_attempt_stands_down_and_writes_nothing_more(
    store: Store, owner: Principal, builder: BuilderActivities, tmp_path: Path
) -> None:
    pushed = push(store, owner)
    running = asyncio.ensure_future(attempt().run(builder.build, task(pushed, SLOW, tmp_path)))
    await until(sleepers, "the slow install to start")
    with store.transaction() as session:
        row = session.get(Build, pushed.build_id)
        assert row is not None
        row.builder, row.attempt = "b-other", "build.2"
    with pytest.raises(ApplicationError) as raised:
        await running
    assert raised.value.non_retryable
    assert raised.value.message == "another builder has taken the build over"
    await until(lambda: not sleepers(), "the abandoned build's sandbox to go")
    log = log_of(store, pushed.build_id)
    ends = ("-----> Build succeeded", "-----> Build failed", "-----> The build stopped")
    assert log and not any(line.startswith(ends) for line in log)
    assert builder.records.standing(pushed.build_id) == ("building", "build.2")


async def test_a_build_stopped_by_temporal_kills_its_sandbox_and_is_left_for_a_retry(
    store: Store, owner: Principal, builder: BuilderActivities, data: Path, tmp_path: Path
) -> None:
    pushed = push(store, owner)
    env = attempt()
    running = asyncio.ensure_future(env.run(builder.build, task(pushed, SLOW, tmp_path)))
    await until(sleepers, "the slow install to start")
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await until(lambda: not sleepers(), "the stopped build's sandbox to go")
    assert builder.running == 0
    begun = LocalRecords(store, data).begin(
        pushed.build_id, pushed.deployment_id, "build.2", "b-next"
    )
    assert begun is not None and begun.previous is not None and "b-test" in begun.previous


async def test_a_build_sent_for_the_warm_cache_to_a_builder_with_no_free_slot_goes_back(
    store: Store,
    owner: Principal,
    data: Path,
    js: JetStreamContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(affinity, "WAIT", 0.05)
    slots = SharedSlots(1)
    assert await slots.claim(0)  # the one slot is busy with another build
    builder = BuilderActivities(
        store, data, js, name="b-warm", slots=slots, own_queue=own_queue("b-warm")
    )
    pushed = push(store, owner)
    with pytest.raises(ApplicationError) as raised:
        await attempt(queue=own_queue("b-warm")).run(
            builder.build, task(pushed, {"index.html": "x"}, tmp_path)
        )
    assert raised.value.non_retryable
    assert raised.value.message == "b-warm has no free slot; the build goes to its pool"
    assert LocalRecords(store, data).standing(pushed.build_id) == ("queued", None)
    assert slots.free == 0 and builder.running == 0


async def test_a_build_from_the_builders_own_queue_holds_a_slot_and_gives_it_back(
    store: Store, owner: Principal, data: Path, js: JetStreamContext, tmp_path: Path
) -> None:
    slots = SharedSlots(2)
    builder = BuilderActivities(
        store, data, js, name="b-warm", slots=slots, own_queue=own_queue("b-warm")
    )
    seen: list[int] = []
    env = attempt(queue=own_queue("b-warm"))
    env.on_heartbeat = lambda *_: seen.append(slots.free)
    pushed = push(store, owner)
    await env.run(builder.build, task(pushed, {"index.html": "x"}, tmp_path))
    assert seen and set(seen) == {1}, "a slot is held while the build runs"
    assert slots.free == 2


async def test_a_builder_elsewhere_builds_through_the_control_plane(
    store: Store, owner: Principal, control_plane: ControlPlane, tmp_path: Path
) -> None:
    remote = RemoteRecords(control_plane.url, control_plane.token, tmp_path / "elsewhere")
    try:
        builder = BuilderActivities(remote, remote.data_dir, None, name="b-far")
        pushed = push(store, owner)
        archive = tar_of({"public/index.html": "<h1>far"})
        source = control_plane.settings.data_dir / "sources" / f"{pushed.build_id}.tar"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(archive)
        build = dataclasses.replace(
            task(pushed, archive, tmp_path), source_path="/not/on/this/machine.tar"
        )
        output = await attempt().run(builder.build, build)
    finally:
        remote.close()
    [app_layer] = output.manifest["layers"]
    published = LayerStore(control_plane.settings.data_dir / "layers").path(app_layer["digest"])
    assert (published / "public" / "index.html").read_text() == "<h1>far"
    log = log_of(store, pushed.build_id)
    assert log[0] == "-----> Building on b-far" and log[-1].startswith("-----> Build succeeded")
