"""Entries published on `audit.ingest.<tenant>` reach the store through the durable
consumer, on SQLite and PostgreSQL, with a real NATS server: acked once stored, redelivery
harmless, and what can never be stored terminated rather than retried."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from shipway import metrics
from shipway.audit import consumer as consumer_module
from shipway.audit.consumer import AuditConsumer
from shipway.store import Store
from shipway.store.tables import AuditEntry, Organization
from tests.servers import Servers


def entry(subject_: str) -> dict[str, Any]:
    return {"sequence": str(uuid.uuid4()), "actor": "service:flags", "action": "flag.toggled",
            "subject": subject_}  # fmt: skip


async def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        found = await asyncio.to_thread(check)
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


#: The consumer's series, by what they count.
COUNTED = {
    "stored": ("shipway_audit_ingest_entries_total", {"outcome": "stored"}),
    "duplicate": ("shipway_audit_ingest_entries_total", {"outcome": "duplicate"}),
    "batches": ("shipway_audit_ingest_batches_total", {}),
    "refused": ("shipway_audit_ingest_failures_total", {"reason": "refused"}),
}


def counted() -> dict[str, float]:
    value = metrics.CONTROL_PLANE.get_sample_value
    return {
        key: value(name, {"via": "nats", **labels}) or 0.0
        for key, (name, labels) in COUNTED.items()
    }


async def test_published_entries_are_stored_once(
    servers: Servers, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = counted()
    unique = uuid.uuid4().hex[:8]
    monkeypatch.setattr(consumer_module, "STREAM", f"AUDIT{unique}")
    monkeypatch.setattr(consumer_module, "PREFIX", f"audit{unique}.ingest.")
    monkeypatch.setattr(consumer_module, "DURABLE", f"audit-ingest-{unique}")
    with store.transaction() as session:
        session.add(Organization(name="acme"))
    link = servers.link()
    await link.connect()
    intake = AuditConsumer(store, link.js)
    await intake.start()
    try:
        again = entry("flag:1")
        for body in (
            [again, entry("flag:2")],
            again,  # sent again: acknowledged, not stored twice
            b"{not json",
            [entry("flag:3"), {"sequence": "x"}],  # a bad entry refuses its whole message
        ):
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            await link.js.publish(consumer_module.subject("acme"), raw)
        await link.js.publish(
            consumer_module.subject("nobody"), json.dumps(entry("flag:4")).encode()
        )
        await link.js.publish(consumer_module.subject("acme"), json.dumps(entry("flag:5")).encode())

        def stored() -> list[str] | None:
            with store.transaction() as session:
                subjects = list(session.scalars(select(AuditEntry.subject).order_by(AuditEntry.id)))
            return subjects if "flag:5" in subjects else None

        assert await until(stored) == ["flag:1", "flag:2", "flag:5"]

        # every message was acked or terminated: the work queue is empty
        async def drained() -> bool:
            state = await link.js.stream_info(consumer_module.STREAM)
            return state.state.messages == 0

        for _ in range(100):
            if await drained():
                break
            await asyncio.sleep(0.1)
        assert await drained()

        # Counted as they ended: 3 entries stored, 1 duplicate, 3 messages stored (a batch
        # each), 3 refused (not JSON, a bad entry, no such tenant).
        moved = {"stored": 3, "duplicate": 1, "batches": 3, "refused": 3}
        expected = {name: before[name] + n for name, n in moved.items()}
        assert await until(lambda: counted() == expected)
    finally:
        await intake.close()
        await link.close()


def nested(levels: int) -> dict[str, Any]:
    """An object LEVELS deep."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


async def test_entries_json_may_not_hold_are_refused_and_logged(
    servers: Servers,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    unique = uuid.uuid4().hex[:8]
    monkeypatch.setattr(consumer_module, "STREAM", f"AUDIT{unique}")
    monkeypatch.setattr(consumer_module, "PREFIX", f"audit{unique}.ingest.")
    monkeypatch.setattr(consumer_module, "DURABLE", f"audit-ingest-{unique}")
    with store.transaction() as session:
        session.add(Organization(name="acme"))
    link = servers.link()
    await link.connect()
    intake = AuditConsumer(store, link.js)
    await intake.start()
    try:
        deep = {**entry("flag:1"), "payload": nested(300)}
        just_over = {**entry("flag:2"), "payload": nested(64)}  # 65 levels with the entry
        bad = [
            json.dumps(deep).encode(),
            json.dumps(just_over).encode(),
            json.dumps({**entry("flag:3"), "actor": "\ud800"}).encode(),
            json.dumps({**entry("flag:4"), "payload": {"n": 10**30}}).encode(),
            b"[" * 100_000 + b"]" * 100_000,
        ]
        for raw in bad:
            await link.js.publish(consumer_module.subject("acme"), raw)
        at_limit = {**entry("flag:5"), "payload": nested(63)}  # 64 levels: taken
        await link.js.publish(consumer_module.subject("acme"), json.dumps(at_limit).encode())

        def stored() -> list[str] | None:
            with store.transaction() as session:
                subjects = list(session.scalars(select(AuditEntry.subject).order_by(AuditEntry.id)))
            return subjects if "flag:5" in subjects else None

        assert await until(stored) == ["flag:5"]

        async def drained() -> bool:
            state = await link.js.stream_info(consumer_module.STREAM)
            return state.state.messages == 0

        for _ in range(100):
            if await drained():
                break
            await asyncio.sleep(0.1)
        assert await drained()
        refusals = [r.getMessage() for r in caplog.records if "refused a message" in r.getMessage()]
        assert len(refusals) == len(bad)
        assert sum("nested more than 64 levels deep" in r for r in refusals) == 3
        assert any("actor: holds a lone UTF-16 surrogate" in r for r in refusals)
        assert any("payload.n: the integer is beyond 64 bits" in r for r in refusals)
    finally:
        await intake.close()
        await link.close()
