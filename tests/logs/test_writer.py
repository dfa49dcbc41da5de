"""LogWriter and follow against the real NATS server and the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64

import pytest
from nats.js.api import StorageType

from shipway.errors import ServiceError
from shipway.links import NatsLink
from shipway.logs import PRIVATE_LINE, LogEvent, LogWriter, bus, ensure_streams, lines
from shipway.logs import writer as writer_module
from shipway.logs.follow import follow
from shipway.logs.writer import MAX_LINE
from shipway.store import Store
from tests.logs.conftest import make_build, make_tenant

pytestmark = pytest.mark.integration

KIND = "build"


async def _collect(stream: object) -> list[LogEvent]:
    return [event async for event in stream]  # type: ignore[attr-defined]


def _stored(store: Store, owner_id: int) -> list[tuple[int, str]]:
    with store.transaction() as session:
        return lines.read(session, KIND, owner_id, limit=100_000)


async def _published(link: NatsLink, owner_id: int) -> list[LogEvent]:
    """Every message of the log in the stream, read back through the same tail followers use."""
    tail = await bus.Tail.open(link.js, KIND, owner_id)
    found: list[LogEvent] = []
    try:
        while not tail.caught_up:
            event = await tail.next(timeout=10)
            assert event is not None
            found.append(event)
    finally:
        await tail.close()
    return found


def _seqs(events: list[LogEvent]) -> list[int]:
    return [e.seq for e in events if e.type == "line"]


@pytest.fixture
def build_id(store: Store) -> int:
    return make_build(store, make_tenant(store, "acme"))


@pytest.mark.parametrize(
    ("batch_lines", "flush_seconds"),
    [(100, 0.2), (7, None), (10_000, None)],
    ids=["default", "small-batches", "nothing-stored-until-close"],
)
async def test_a_follower_joining_midway_gets_every_line_once_in_order(
    store: Store, link: NatsLink, build_id: int, batch_lines: int, flush_seconds: float | None
) -> None:
    writer = await LogWriter.open(
        store, link.js, KIND, build_id, batch_lines=batch_lines, flush_seconds=flush_seconds
    )
    halfway = asyncio.Event()

    async def produce() -> None:
        for n in range(1, 501):
            await writer.write(f"line {n}")
            if n == 250:
                halfway.set()
            await asyncio.sleep(0)
        await writer.close("succeeded")

    async def consume(after_seq: int = 0) -> list[LogEvent]:
        await halfway.wait()
        return await _collect(follow(store, link.js, KIND, build_id, after_seq))

    _, got, resumed = await asyncio.gather(produce(), consume(), consume(after_seq=123))
    assert _seqs(got) == list(range(1, 501))
    assert [e.line for e in got[:-1]] == [f"line {n}" for n in range(1, 501)]
    assert got[-1] == LogEvent.end(500, "succeeded")
    assert _seqs(resumed) == list(range(124, 501)) and resumed[-1].status == "succeeded"
    assert [seq for seq, _ in _stored(store, build_id)] == list(range(1, 501))


async def test_a_finished_log_is_replayed_from_the_store_and_the_stream(
    store: Store, link: NatsLink, build_id: int
) -> None:
    writer = await LogWriter.open(store, link.js, KIND, build_id)
    for n in range(1, 21):
        await writer.write(f"line {n}")
    await writer.close("failed")

    replay = await _collect(follow(store, link.js, KIND, build_id))
    assert _seqs(replay) == list(range(1, 21)) and replay[-1] == LogEvent.end(20, "failed")

    stored_only = await _collect(follow(store, link.js, KIND, build_id, 15, live=False))
    assert _seqs(stored_only) == [16, 17, 18, 19, 20]
    assert all(e.type == "line" for e in stored_only)

    without_nats = await _collect(follow(store, None, KIND, build_id, 18))
    assert _seqs(without_nats) == [19, 20]


async def test_a_retried_attempt_continues_the_seq_and_stores_what_the_first_left_behind(
    store: Store, link: NatsLink, build_id: int
) -> None:
    first = await LogWriter.open(
        store, link.js, KIND, build_id, batch_lines=100, flush_seconds=None
    )
    for n in range(1, 151):
        await first.write(f"first attempt {n}")
    # the first builder dies here: lines 101..150 were published but never stored
    assert [seq for seq, _ in _stored(store, build_id)] == list(range(1, 101))

    second = await LogWriter.open(store, link.js, KIND, build_id)
    assert second.seq == 150
    assert [seq for seq, _ in _stored(store, build_id)] == list(range(1, 151))
    for n in range(1, 11):
        await second.write(f"second attempt {n}")
    await second.close("succeeded")

    got = await _collect(follow(store, link.js, KIND, build_id))
    assert _seqs(got) == list(range(1, 161)) and got[-1].status == "succeeded"
    assert got[150].line == "second attempt 1"
    assert [seq for seq, _ in _stored(store, build_id)] == list(range(1, 161))
    third = await LogWriter.open(store, link.js, KIND, build_id)
    assert third.seq == 160


async def test_a_retried_publish_is_dropped_by_jetstream(
    store: Store, link: NatsLink, build_id: int
) -> None:
    await bus.publish_line(link.js, KIND, build_id, 1, "once")
    await bus.publish_line(link.js, KIND, build_id, 1, "once")
    await bus.publish_line(link.js, KIND, build_id, 2, "twice")
    assert _seqs(await _published(link, build_id)) == [1, 2]


async def test_secrets_never_reach_the_stream_or_the_store(
    store: Store, link: NatsLink, build_id: int
) -> None:
    secret = "pa55-w0rd-Xyz!"
    writer = await LogWriter.open(store, link.js, KIND, build_id, secrets=["", secret, "ab"])
    encoded = base64.b64encode(f"user:{secret}".encode()).decode()
    await writer.write(f"DATABASE_URL=postgres://u:{secret}@db/x")
    await writer.write(f"Authorization: Basic {encoded}")
    await writer.write(base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="))
    await writer.write("about abc")
    await writer.close("succeeded")

    published = [e.line for e in await _published(link, build_id) if e.type == "line"]
    stored = [line for _, line in _stored(store, build_id)]
    assert published == stored
    assert stored[0] == "DATABASE_URL=postgres://u:***@db/x"
    assert stored[2] == "***"
    assert stored[3] == "about abc"  # too short a secret is not masked
    for line in stored[:3]:
        assert "***" in line
        assert secret not in line and "cGE1NS13MHJkLVh5eiE" not in line


async def test_private_output_shows_as_one_placeholder(
    store: Store, link: NatsLink, build_id: int
) -> None:
    writer = await LogWriter.open(store, link.js, KIND, build_id)
    await writer.write("before")
    with writer.private():
        for n in range(5):
            await writer.write(f"hidden {n}")
    await writer.write("between")
    await writer.write("flagged 1", private=True)
    await writer.write("flagged 2", private=True)
    await writer.write("after")
    with writer.private():
        pass  # a private step without output leaves no placeholder
    await writer.close("succeeded")
    expected = ["before", PRIVATE_LINE, "between", PRIVATE_LINE, "after"]
    assert [line for _, line in _stored(store, build_id)] == expected
    assert [e.line for e in await _published(link, build_id) if e.type == "line"] == expected


async def test_lines_are_cleaned_before_they_leave(
    store: Store, link: NatsLink, build_id: int
) -> None:
    writer = await LogWriter.open(store, link.js, KIND, build_id)
    await writer.write("windows\r\n")
    await writer.write("nul\x00byte")
    await writer.write("bad \udcff bytes")
    await writer.write("x" * (MAX_LINE + 10))
    await writer.close("succeeded")
    await writer.close("succeeded")  # closing twice does nothing
    await writer.write("after close")  # dropped, not raised
    stored = [line for _, line in _stored(store, build_id)]
    assert stored[:3] == ["windows", "nul\ufffdbyte", "bad ? bytes"]
    assert stored[3].endswith("… (10 characters cut)") and len(stored) == 4
    published = await _published(link, build_id)
    assert [e.line for e in published if e.type == "line"] == stored
    assert published[-1] == LogEvent.end(4, "succeeded")


async def test_a_log_whose_end_was_never_published_ends_when_its_owner_has(
    store: Store, link: NatsLink, build_id: int
) -> None:
    writer = await LogWriter.open(store, link.js, KIND, build_id, flush_seconds=None)
    await writer.write("the builder died after this line")
    status: list[str | None] = [None]
    asked = asyncio.Event()

    async def finished() -> str | None:
        asked.set()
        return status[0]

    async def consume() -> list[LogEvent]:
        return await _collect(follow(store, link.js, KIND, build_id, finished=finished, idle=0.05))

    task = asyncio.create_task(consume())
    await asyncio.wait_for(asked.wait(), 30)
    status[0] = "failed"
    got = await asyncio.wait_for(task, 30)
    assert _seqs(got) == [1]
    assert got[0].line == "the builder died after this line"
    assert got[-1] == LogEvent.end(1, "failed")
    assert any(e.type == "idle" for e in got)
    await writer.close("failed")


async def test_a_writer_without_nats_still_stores(store: Store, build_id: int) -> None:
    writer = await LogWriter.open(store, None, KIND, build_id, batch_lines=3)
    for n in range(1, 8):
        await writer.write(f"l{n}")
    await writer.close("succeeded")
    assert _stored(store, build_id) == [(n, f"l{n}") for n in range(1, 8)]


async def test_a_quiet_writer_stores_its_lines_soon_without_a_full_batch(
    store: Store, build_id: int
) -> None:
    writer = await LogWriter.open(store, None, KIND, build_id, flush_seconds=0.01)
    await writer.write("only line")
    for _ in range(3000):
        if _stored(store, build_id):
            break
        await asyncio.sleep(0.01)
    assert _stored(store, build_id) == [(1, "only line")]
    await writer.close("succeeded")


async def test_lines_survive_a_store_outage_and_close_can_be_retried(
    store: Store, build_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = writer_module.StoreLines.insert
    down = [True]

    def flaky(*args: object) -> None:
        if down[0]:
            raise OSError("database is down")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(writer_module.StoreLines, "insert", flaky)
    writer = await LogWriter.open(store, None, KIND, build_id, batch_lines=2)
    for n in range(1, 6):
        await writer.write(f"l{n}")  # the failing flushes are logged, not raised
    with pytest.raises(ServiceError, match="database is down"):
        await writer.close("succeeded")
    await writer.write("too late")
    down[0] = False
    await writer.close("succeeded")
    assert _stored(store, build_id) == [(n, f"l{n}") for n in range(1, 6)]


async def test_ensure_streams_is_idempotent(link: NatsLink) -> None:
    await ensure_streams(link.js)
    await ensure_streams(link.js)
    info = await link.js.stream_info(bus.STREAM)
    assert info.config.subjects == ["logs.>"]
    assert info.config.max_age == bus.MAX_AGE
    assert info.config.storage == StorageType.FILE
