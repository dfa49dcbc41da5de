"""Read a log as it is written: the stored lines, then the live tail, no gap and no duplicate.

The tail is an ordered consumer over the log's whole subject, so it also holds lines that were
published but not yet stored; lines are told apart by seq, and one already yielded is skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext

from shipway.errors import ServiceError
from shipway.logs import bus, lines
from shipway.logs.event import LogEvent
from shipway.store import Store

#: Seconds of quiet after which a follower is told so (an SSE keep-alive) and `finished` is asked.
IDLE = 15.0

PAGE = 1000

#: Says whether the log's owner has ended, and how: a status, or None while it runs.
Finished = Callable[[], Awaitable[str | None]]


async def follow(
    store: Store,
    js: JetStreamContext | None,
    kind: str,
    owner_id: int,
    after_seq: int = 0,
    live: bool = True,
    *,
    finished: Finished | None = None,
    idle: float = IDLE,
    lookback: float | None = None,
) -> AsyncIterator[LogEvent]:
    """The lines after AFTER_SEQ in order; with LIVE (and NATS), then the rest as written.

    A live follow ends with an "end" event when the writer publishes its end, or when FINISHED
    reports a status (checked once caught up with the stream, then after each quiet IDLE
    seconds, which also yield an "idle" event): so a log whose end was published long ago, or
    never, does not hang. Without LIVE it stops after the stored lines, with no "end".

    The live tail reads the log's messages from its first, or with LOOKBACK only those of the
    last LOOKBACK seconds: enough for a log that is stored as it is written (an app's, which
    runs for weeks), as long as no line waits longer than that to be stored.
    """
    if not live or js is None:
        async for event in _stored(store, kind, owner_id, after_seq, contiguous=False):
            yield event
        return
    try:
        since = None if lookback is None else datetime.now(UTC) - timedelta(seconds=lookback)
        tail = await bus.Tail.open(js, kind, owner_id, since=since)
    except bus.ERRORS as e:
        raise ServiceError(f"cannot follow the log of {kind} {owner_id}: {e}") from e
    last = after_seq
    try:
        async for event in _stored(store, kind, owner_id, last, contiguous=True):
            last = event.seq
            yield event
        status: str | None = None
        asked = False
        while status is None:
            if tail.caught_up and not asked and finished is not None:
                asked = True
                status = await finished()
                continue
            try:
                got = await tail.next(timeout=idle)
            except bus.ERRORS as e:
                raise ServiceError(f"lost the log of {kind} {owner_id}: {e}") from e
            if got is None:
                yield LogEvent("idle", last)
                status = await finished() if finished is not None else None
            elif got.type == "end":
                status = got.status
            elif got.seq > last:
                last = got.seq
                yield got
        async for event in _stored(store, kind, owner_id, last, contiguous=False):
            last = event.seq
            yield event
        yield LogEvent.end(last, status)
    finally:
        await tail.close()


async def _stored(
    store: Store, kind: str, owner_id: int, after_seq: int, *, contiguous: bool
) -> AsyncIterator[LogEvent]:
    """Stored lines after AFTER_SEQ; if CONTIGUOUS, only up to the first missing seq (a line
    not stored yet), which the tail then delivers."""
    while True:
        page = await asyncio.to_thread(_read, store, kind, owner_id, after_seq)
        for seq, line in page:
            if contiguous and seq != after_seq + 1:
                return
            after_seq = seq
            yield LogEvent.of_line(seq, line)
        if len(page) < PAGE:
            return


def _read(store: Store, kind: str, owner_id: int, after_seq: int) -> list[tuple[int, str]]:
    with store.transaction() as session:
        return lines.read(session, kind, owner_id, after_seq, PAGE)
