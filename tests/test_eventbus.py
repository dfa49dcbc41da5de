"""Committed events reach a waiter in another part of the control plane through a real NATS:
it looks again as soon as one comes, not at its next periodic look."""

from __future__ import annotations

import asyncio
import time

from shipway import eventbus, events, subscribers
from shipway.events import Event
from shipway.links import NatsLink
from shipway.store import Store


def test_an_event_is_published_under_its_subject() -> None:
    live = Event(1, "system", "deployment.live", "deployment:12")
    assert eventbus.subject_of(live) == "events.deployment.12.deployment.live"
    assert eventbus.subject("deployment", 12) == "events.deployment.12.>"
    # A subject that is not plain tokens is not published (nothing waits on it).
    assert eventbus.subject_of(Event(1, "system", "x", "function:acme.greet")) is None
    assert eventbus.subject_of(Event(1, "system", "x", "token:a b")) is None


async def test_a_waiter_looks_again_when_the_change_commits(
    link: NatsLink, store: Store, admin_token: str
) -> None:
    publisher = subscribers.publish_events(link)
    looks: list[float] = []
    done = asyncio.Event()

    async def look() -> str | None:
        looks.append(time.monotonic())
        return "ended" if done.is_set() else None

    def commit_the_end() -> None:
        done.set()
        with store.transaction() as session:
            events.emit(session, Event(1, "system", "deployment.failed", "deployment:12"))

    try:
        on = eventbus.subject("deployment", 12)
        # With no periodic look within the test's time, only the event can wake the waiter.
        waiting = asyncio.create_task(eventbus.until(link, on, look, 3600, recheck=3600))
        while not looks:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(commit_the_end)
        assert await asyncio.wait_for(waiting, 60) == "ended"
        assert len(looks) == 2
    finally:
        events.unlisten(publisher)


async def test_a_waiter_without_news_gives_up_at_its_timeout(link: NatsLink) -> None:
    async def never() -> str | None:
        return None

    on = eventbus.subject("deployment", 13)
    assert await eventbus.until(link, on, never, 0.3, recheck=0.1) is None
