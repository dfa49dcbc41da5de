"""Domain events on NATS, so that any process of the control plane can react to a change made
in another: a push waiting for its deployment to end, a webhook delivery reporting its commit
status, the autoscaler waking a pool for a queued build.

An event is published once its transaction commits (a listener of shipway.events), on
`events.KIND.ID.ACTION`, from its subject `KIND:ID`: a deployment going live is
`events.deployment.12.deployment.live`. Core NATS, not a stream: an event is a nudge to look
again at the store, which stays the truth, so a waiter that misses one (NATS reconnecting)
still finds the change at its next look.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shipway import tracing
from shipway.events import Event
from shipway.links import NatsLink

log = logging.getLogger(__name__)

PREFIX = "events"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: Seconds between looks at the store while no event comes, in case one was missed.
RECHECK = 10.0

T = TypeVar("T")


def subject(kind: str, ident: str | int, action: str = ">") -> str:
    """The NATS subject of ACTION on KIND:IDENT (every action by default, to subscribe)."""
    return f"{PREFIX}.{kind}.{ident}.{action}"


def subject_of(event: Event) -> str | None:
    """Where EVENT is published; None when its subject is not made of plain tokens."""
    kind, _, ident = event.subject.partition(":")
    if not (_TOKEN.fullmatch(kind) and _TOKEN.fullmatch(ident)):
        return None
    return subject(kind, ident, event.action)


class Publisher:
    """The listener that publishes each committed event, from whichever thread committed it."""

    def __init__(self, link: NatsLink, loop: asyncio.AbstractEventLoop) -> None:
        self.link = link
        self.loop = loop
        self._sending: set[asyncio.Future[None]] = set()

    def __call__(self, event: Event) -> None:
        where = subject_of(event)
        if where is None or self.loop.is_closed():
            return
        body = json.dumps({"action": event.action, "subject": event.subject}).encode()
        # The span that made the change, for work a listener does on hearing it.
        self.loop.call_soon_threadsafe(self._send, where, body, tracing.headers() or None)

    def _send(self, where: str, body: bytes, headers: dict[str, str] | None) -> None:
        sending = asyncio.ensure_future(self.link.nc.publish(where, body, headers=headers))
        self._sending.add(sending)
        sending.add_done_callback(self._sent)

    def _sent(self, sending: asyncio.Future[None]) -> None:
        self._sending.discard(sending)
        if not sending.cancelled() and sending.exception() is not None:
            log.debug("cannot publish an event: %s", sending.exception())


async def until(
    link: NatsLink | None,
    on: str,
    look: Callable[[], Awaitable[T | None]],
    timeout: float,
    *,
    recheck: float | None = None,
) -> T | None:
    """What LOOK finds, asking it now and again whenever an event comes on subject ON (and every
    RECHECK seconds in between); None if it found nothing within TIMEOUT. Without NATS (LINK
    None) it looks every RECHECK seconds."""
    every = RECHECK if recheck is None else recheck
    nudged = asyncio.Event()

    async def nudge(_: object) -> None:
        nudged.set()

    subscription = await link.nc.subscribe(on, cb=nudge) if link is not None else None
    try:
        deadline = time.monotonic() + timeout
        while True:
            nudged.clear()
            found = await look()
            left = deadline - time.monotonic()
            if found is not None or left <= 0:
                return found
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(nudged.wait(), min(every, left))
    finally:
        if subscription is not None:
            await subscription.unsubscribe()
