"""Domain events: recorded inside the emitting transaction, told to listeners only once it
commits, and never emitted where nothing records them. Against a real store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from shipway import events
from shipway.events import Event, Unrecorded
from shipway.store import Store
from shipway.store.tables import AuditEntry


@pytest.fixture
def heard(admin_token: str) -> Iterator[list[Event]]:
    """What the listener hears, in a store with its platform organization (id 1)."""
    got: list[Event] = []
    events.listen(got.append)
    yield got
    events.unlisten(got.append)


def event(action: str) -> Event:
    return Event(1, "user:ann", action, "app:web", {"n": 1})


def actions(store: Store) -> list[str]:
    with store.transaction() as session:
        found = select(AuditEntry.action).where(AuditEntry.subject == "app:web")
        return list(session.scalars(found.order_by(AuditEntry.id)))


def test_an_event_is_recorded_with_its_change_and_heard_after_commit(
    store: Store, heard: list[Event]
) -> None:
    with store.transaction() as session:
        events.emit(session, event("app.create"))
        events.emit(session, event("app.scale"))
        assert heard == []  # not before the change is durable
    assert [e.action for e in heard] == ["app.create", "app.scale"]
    assert actions(store) == ["app.create", "app.scale"]


def test_a_rolled_back_change_is_neither_recorded_nor_heard(
    store: Store, heard: list[Event]
) -> None:
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as session:
        events.emit(session, event("app.delete"))
        raise RuntimeError("boom")
    with store.transaction():
        pass  # a later commit of another change does not tell the dropped one
    assert heard == []
    assert actions(store) == []


def test_a_failing_listener_does_not_undo_the_change(store: Store, heard: list[Event]) -> None:
    def broken(_: Event) -> None:
        raise ValueError("listener bug")

    events.listen(broken)
    try:
        with store.transaction() as session:
            events.emit(session, event("app.create"))
    finally:
        events.unlisten(broken)
    assert [e.action for e in heard] == ["app.create"]
    assert actions(store) == ["app.create"]


def test_nothing_is_emitted_where_nothing_records(
    store: Store, heard: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "_recorders", [])
    with (
        pytest.raises(Unrecorded, match=r"app\.create cannot be emitted"),
        store.transaction() as session,
    ):
        events.emit(session, event("app.create"))
    monkeypatch.undo()
    assert actions(store) == []
