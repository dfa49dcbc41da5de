"""The JetStream side of logs: the LOGS stream, one subject per log, and reading a subject back.

A line is a message on `logs.<kind>.<owner_id>` whose payload is the line and whose
`Shipway-Seq` header is its number; the `Nats-Msg-Id` header `<kind>.<owner_id>.<seq>` lets
JetStream drop a publish that is retried. The end of a log is a message with a `Shipway-End:
<status>` header and the last line's number.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import NoStreamResponseError, NotFoundError

from shipway.jetstream import ensure_stream
from shipway.logs.event import LogEvent

STREAM = "LOGS"
SUBJECTS = ["logs.>"]
MAX_AGE = 7 * 24 * 3600.0
DUPLICATE_WINDOW = 120.0

SEQ_HEADER = "Shipway-Seq"
END_HEADER = "Shipway-End"
MSG_ID_HEADER = "Nats-Msg-Id"

#: JetStream's error code for a stream name in use with another configuration.

#: What talking to NATS may raise: its own errors, timeouts, and a dropped socket.
ERRORS = (nats.errors.Error, asyncio.TimeoutError, OSError)

T = TypeVar("T")


def subject(kind: str, owner_id: int) -> str:
    return f"logs.{kind}.{owner_id}"


def stream_config() -> StreamConfig:
    """File-backed and kept a week: the store holds the durable copy, the stream the live tail."""
    return StreamConfig(
        name=STREAM,
        description="shipway log lines; the store keeps the durable copy",
        subjects=SUBJECTS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=MAX_AGE,
        duplicate_window=DUPLICATE_WINDOW,
        # Last-by-subject reads name the subject in the request's own subject, so NATS
        # permissions can say whose logs a client may read (see shipway.natsauth).
        allow_direct=True,
    )


async def ensure_streams(js: JetStreamContext) -> None:
    """Create the LOGS stream, or bring an existing one to this config; safe at every start."""
    await ensure_stream(js, stream_config())


async def _with_stream(js: JetStreamContext, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ATTEMPT, creating the stream once if it is missing (NATS started with a fresh dir)."""
    try:
        return await attempt()
    except (NoStreamResponseError, NotFoundError):
        await ensure_streams(js)
        return await attempt()


async def publish_line(js: JetStreamContext, kind: str, owner_id: int, seq: int, line: str) -> None:
    headers = {MSG_ID_HEADER: f"{kind}.{owner_id}.{seq}", SEQ_HEADER: str(seq)}
    await _with_stream(
        js, lambda: js.publish(subject(kind, owner_id), line.encode(), headers=headers)
    )


async def publish_end(
    js: JetStreamContext, kind: str, owner_id: int, seq: int, status: str
) -> None:
    headers = {
        MSG_ID_HEADER: f"{kind}.{owner_id}.end.{seq}",
        SEQ_HEADER: str(seq),
        END_HEADER: status,
    }
    await _with_stream(js, lambda: js.publish(subject(kind, owner_id), b"", headers=headers))


def parse(headers: dict[str, Any] | None, data: bytes | None) -> LogEvent | None:
    """The line or end a message carries; None for a message that is neither."""
    headers = headers or {}
    try:
        seq = int(headers.get(SEQ_HEADER, ""))
    except ValueError:
        return None
    status = headers.get(END_HEADER)
    if status is not None:
        return LogEvent.end(seq, str(status))
    return LogEvent.of_line(seq, (data or b"").decode("utf-8", "replace"))


async def last_published(js: JetStreamContext, kind: str, owner_id: int) -> int:
    """The seq of the log's last message in the stream (a line or the end), 0 if there is none."""
    try:
        raw = await js.get_last_msg(STREAM, subject(kind, owner_id), direct=True)
    except NotFoundError:
        return 0
    event = parse(raw.headers, raw.data)
    return event.seq if event else 0


class Tail:
    """One log's messages from the first on, in order, through an ephemeral ordered consumer.

    `caught_up` turns true once every message that was in the stream at opening has arrived.
    """

    def __init__(self, sub: JetStreamContext.PushSubscription, horizon: int) -> None:
        self._sub = sub
        self._horizon = horizon
        self.caught_up = horizon == 0

    @classmethod
    async def open(
        cls, js: JetStreamContext, kind: str, owner_id: int, *, since: datetime | None = None
    ) -> Tail:
        """A tail from the log's first message, or from the first published at SINCE or later
        (a long-lived log, whose whole week in the stream would be too much to read back)."""
        name = subject(kind, owner_id)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        if since is not None:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since
            )
        sub = await _with_stream(
            js,
            lambda: js.subscribe(name, stream=STREAM, ordered_consumer=True, config=config),
        )
        try:
            last = await js.get_last_msg(STREAM, name, direct=True)
            horizon = last.seq or 0
        except NotFoundError:
            horizon = 0
        except BaseException:
            await sub.unsubscribe()
            raise
        return cls(sub, horizon)

    async def next(self, timeout: float) -> LogEvent | None:
        """The next line or end; None when nothing arrives within TIMEOUT seconds."""
        while True:
            try:
                msg = await self._sub.next_msg(timeout=timeout)
            except nats.errors.TimeoutError:
                return None
            if msg.metadata.sequence.stream >= self._horizon:
                self.caught_up = True
            event = parse(msg.headers, msg.data)
            if event is not None:
                return event

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()
