"""Retention deletes whole UTC days past the limit, and nothing else, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from shipway.audit import retention
from shipway.audit.record import record
from shipway.events import Event
from shipway.store import Store
from shipway.store.tables import AuditEntry, Organization

NOW = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)


def test_whole_days_past_the_limit_go(store: Store) -> None:
    moments = {
        "old": NOW - timedelta(days=10),
        "last-second-out": datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC),
        "first-second-kept": datetime(2026, 11, 21, 0, 0, tzinfo=UTC),
        "today": NOW,
    }
    with store.transaction() as session:
        org = Organization(name="acme")
        session.add(org)
        session.flush()
        for name in moments:
            record(session, Event(org.id, "user:a", "thing.done", f"thing:{name}"))
    with store.transaction() as session:
        for name, moment in moments.items():
            session.execute(
                update(AuditEntry)
                .where(AuditEntry.subject == f"thing:{name}")
                .values(created_at=moment)
            )
    assert retention.cutoff(2, NOW) == datetime(2026, 11, 21, tzinfo=UTC)
    assert retention.prune(store, 2, NOW) == 2
    assert retention.prune(store, 2, NOW) == 0
    with store.transaction() as session:
        kept = set(session.scalars(select(AuditEntry.subject)))
    assert kept == {"thing:first-second-kept", "thing:today"}
