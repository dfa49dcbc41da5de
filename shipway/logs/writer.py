"""The producer end of one log: number each line, mask it, publish it live, store it in batches."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from nats.js import JetStreamContext

from shipway.errors import ServiceError
from shipway.logs import bus, lines
from shipway.logs.mask import Masker
from shipway.store import Store

log = logging.getLogger(__name__)

PRIVATE_LINE = "(output of a private step hidden)"

#: Longer lines are cut: one minified file must not outgrow a NATS message.
MAX_LINE = 16_384

BATCH_LINES = 100
FLUSH_SECONDS = 0.2

#: After a failed publish or insert, wait this long before the next try, so a dead NATS or
#: database slows a build down by one timeout, not one per line.
RETRY_AFTER = 5.0

#: How long reading back an earlier attempt's lines may wait for the next one.
BACKFILL_TIMEOUT = 10.0


def clean(line: str) -> str:
    """LINE without its line ending, NULs (PostgreSQL refuses them) or undecodable bytes."""
    line = line.rstrip("\r\n").replace("\x00", "\ufffd")
    try:
        line.encode()
    except UnicodeEncodeError:
        line = line.encode("utf-8", "replace").decode()
    return line


def clip(line: str) -> str:
    """LINE cut to MAX_LINE characters; cut after masking, so no half secret is left over."""
    if len(line) <= MAX_LINE:
        return line
    return f"{line[:MAX_LINE]}… ({len(line) - MAX_LINE} characters cut)"


class LogWriter:
    """Writes one log (one per build): lines go to JetStream at once and to the store in batches.

    Lines are numbered 1, 2, 3…; a writer made by `open` continues after the last number an
    earlier attempt used. Secrets are masked before a line leaves this object.
    """

    def __init__(
        self,
        store: Store | LineStore,
        js: JetStreamContext | None,
        kind: str,
        owner_id: int,
        *,
        secrets: Iterable[str] = (),
        start_seq: int = 0,
        batch_lines: int = BATCH_LINES,
        flush_seconds: float | None = FLUSH_SECONDS,
    ) -> None:
        self.store = _kept(store)
        self.js = js
        self.kind = kind
        self.owner_id = owner_id
        self.masker = Masker(secrets)
        self.batch_lines = batch_lines
        self.flush_seconds = flush_seconds
        self._seq = start_seq
        self._pending: list[tuple[int, str]] = []
        self._write_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._private = 0
        self._hid = False
        self._closed = False
        self._ended = False
        self._bus_retry_at = 0.0
        self._store_retry_at = 0.0

    @classmethod
    async def open(
        cls,
        store: Store | LineStore,
        js: JetStreamContext | None,
        kind: str,
        owner_id: int,
        *,
        secrets: Iterable[str] = (),
        batch_lines: int = BATCH_LINES,
        flush_seconds: float | None = FLUSH_SECONDS,
    ) -> LogWriter:
        """A writer that continues the log where an earlier attempt left it.

        Lines that attempt published but never stored (it died before its flush) are copied
        from the stream into the store first, so the store has the whole log in the end.
        """
        kept = _kept(store)
        stored = await asyncio.to_thread(kept.last_seq, kind, owner_id)
        published = 0
        if js is not None:
            try:
                published = await bus.last_published(js, kind, owner_id)
                if published > stored:
                    await _backfill(kept, js, kind, owner_id, stored)
            except bus.ERRORS as e:
                raise ServiceError(
                    f"cannot read the log of {kind} {owner_id} from NATS: {e}"
                ) from e
        return cls(
            kept,
            js,
            kind,
            owner_id,
            secrets=secrets,
            start_seq=max(stored, published),
            batch_lines=batch_lines,
            flush_seconds=flush_seconds,
        )

    def hide(self, secrets: Iterable[str]) -> None:
        """Mask SECRETS from the next line on (a running app's secrets change with its release)."""
        self.masker = Masker(secrets)

    @property
    def seq(self) -> int:
        """The number of the last line written (0 before the first)."""
        return self._seq

    @contextmanager
    def private(self) -> Iterator[None]:
        """Hide what is written inside: the whole block shows as one placeholder line."""
        self._private += 1
        try:
            yield
        finally:
            self._private -= 1
            if not self._private:
                self._hid = False

    async def write(self, line: str, *, private: bool = False) -> None:
        """Add one line; a run of PRIVATE lines shows as one placeholder line."""
        async with self._write_lock:
            if self._closed:
                log.debug("%s %d: line written after close dropped", self.kind, self.owner_id)
                return
            text = self._visible(line, private)
            if text is None:
                return
            self._seq += 1
            await self._publish(self._seq, text)
            self._pending.append((self._seq, text))
        if len(self._pending) >= self.batch_lines and time.monotonic() >= self._store_retry_at:
            await self._flush_quietly()
        elif self.flush_seconds is not None and self._timer is None:
            delay = max(self.flush_seconds, self._store_retry_at - time.monotonic())
            self._timer = asyncio.create_task(self._flush_soon(delay))

    async def flush(self) -> None:
        """Store the buffered lines now. If the store fails they stay buffered, and this raises."""
        async with self._flush_lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                await asyncio.to_thread(self.store.insert, self.kind, self.owner_id, batch)
            except BaseException:
                self._pending[:0] = batch
                raise

    async def close(self, status: str) -> None:
        """Store what is buffered, then publish the end so followers stop with STATUS.

        Raises ServiceError when the store fails; calling close again retries. Once it has
        succeeded, further calls do nothing.
        """
        async with self._write_lock:
            self._closed = True
            if self._ended:
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            try:
                await self.flush()
            except Exception as e:
                raise ServiceError(
                    f"cannot store the log of {self.kind} {self.owner_id}: {e}"
                ) from e
            try:
                if self.js is not None:
                    await bus.publish_end(self.js, self.kind, self.owner_id, self._seq, status)
                else:
                    await asyncio.to_thread(
                        self.store.end, self.kind, self.owner_id, self._seq, status
                    )
            except (*bus.ERRORS, ServiceError) as e:
                log.warning("cannot publish the end of %s %d: %s", self.kind, self.owner_id, e)
            self._ended = True

    def abandon(self) -> None:
        """Write nothing more, not even the end: another attempt has taken the log over, and
        copied from the stream what this one published."""
        self._closed = self._ended = True
        self._pending = []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _visible(self, line: str, private: bool) -> str | None:
        if private or self._private:
            if self._hid:
                return None
            self._hid = True
            return PRIVATE_LINE
        self._hid = False
        return clip(self.masker.mask(clean(line)))

    async def _publish(self, seq: int, text: str) -> None:
        if self.js is None or time.monotonic() < self._bus_retry_at:
            return
        try:
            await bus.publish_line(self.js, self.kind, self.owner_id, seq, text)
        except bus.ERRORS as e:
            self._bus_retry_at = time.monotonic() + RETRY_AFTER
            log.warning(
                "cannot publish line %d of %s %d (it is still stored): %s",
                seq,
                self.kind,
                self.owner_id,
                e,
            )

    async def _flush_quietly(self) -> None:
        try:
            await self.flush()
        except Exception as e:  # the lines stay buffered for the next flush or close
            self._store_retry_at = time.monotonic() + RETRY_AFTER
            log.warning("cannot store the log of %s %d yet: %s", self.kind, self.owner_id, e)

    async def _flush_soon(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._timer = None
        await self._flush_quietly()


class LineStore(Protocol):
    """Where a log's lines are kept: the store, or the control plane over HTTP for a builder
    on another machine. Blocking calls."""

    #: Whether the keeper also publishes the lines live (so the writer needs no NATS).
    relayed: bool

    def last_seq(self, kind: str, owner_id: int) -> int: ...

    def insert(self, kind: str, owner_id: int, batch: Sequence[tuple[int, str]]) -> None: ...

    def end(self, kind: str, owner_id: int, seq: int, status: str) -> None:
        """The log ended with STATUS after line SEQ (for a keeper that relays it)."""


class StoreLines:
    """Log lines in the store's log_lines table."""

    relayed = False

    def __init__(self, store: Store) -> None:
        self.store = store

    def end(self, kind: str, owner_id: int, seq: int, status: str) -> None:
        """Nothing to keep: the end of a log lives in the stream."""

    def last_seq(self, kind: str, owner_id: int) -> int:
        with self.store.transaction() as session:
            return lines.last_seq(session, kind, owner_id)

    def insert(self, kind: str, owner_id: int, batch: Sequence[tuple[int, str]]) -> None:
        with self.store.transaction() as session:
            lines.insert(session, kind, owner_id, batch)


def _kept(store: Store | LineStore) -> LineStore:
    return StoreLines(store) if isinstance(store, Store) else store


async def _backfill(
    store: LineStore, js: JetStreamContext, kind: str, owner_id: int, after_seq: int
) -> None:
    """Copy the lines after AFTER_SEQ that are in the stream into the store."""
    found: list[tuple[int, str]] = []
    tail = await bus.Tail.open(js, kind, owner_id)
    try:
        while not tail.caught_up:
            event = await tail.next(timeout=BACKFILL_TIMEOUT)
            if event is None:
                break
            if event.type == "line" and event.seq > after_seq:
                found.append((event.seq, event.line))
    finally:
        await tail.close()
    await asyncio.to_thread(store.insert, kind, owner_id, found)
