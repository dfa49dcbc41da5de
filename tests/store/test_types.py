"""Column types that behave alike on SQLite and PostgreSQL: times are instants in UTC, stored
and compared as such whatever zone they were given in; JSON keeps what it is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from shipway.store import Store
from shipway.store.tables import AuditEntry, Organization
from shipway.store.types import has_nul

INDIA = timezone(timedelta(hours=5, minutes=30))
CHICAGO = timezone(timedelta(hours=-6))


def test_a_time_given_in_any_zone_comes_back_as_the_same_instant_in_utc(store: Store) -> None:
    given = datetime(2026, 3, 1, 23, 45, 12, 345678, tzinfo=INDIA)
    with store.transaction() as session:
        org = Organization(name="acme", created_at=given)
        session.add(org)
    with store.transaction() as session:
        found = session.get(Organization, org.id)
        assert found is not None
        assert found.created_at == given
        assert found.created_at.utcoffset() == timedelta(0)
        assert found.created_at.replace(tzinfo=None) == datetime(2026, 3, 1, 18, 15, 12, 345678)


def test_times_in_a_query_are_compared_as_instants(store: Store) -> None:
    early = datetime(2026, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))  # 08:00 UTC
    late = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with store.transaction() as session:
        session.add(Organization(name="late", created_at=late))
        session.add(Organization(name="early", created_at=early))
    cutoff = datetime(2026, 3, 1, 2, 30, tzinfo=CHICAGO)  # 08:30 UTC
    with store.transaction() as session:
        ordered = session.scalars(select(Organization.name).order_by(Organization.created_at))
        assert list(ordered) == ["early", "late"]
        before = session.scalars(select(Organization.name).where(Organization.created_at < cutoff))
        assert list(before) == ["early"]


def test_a_time_without_a_zone_is_refused(store: Store) -> None:
    with pytest.raises(StatementError, match="naive datetime"), store.transaction() as session:
        session.add(Organization(name="acme", created_at=datetime(2026, 3, 1, 12, 0)))
        session.flush()


def test_json_keeps_nested_values_as_given(store: Store) -> None:
    payload = {
        "numbers": [1, 2.5, -3, 10**12],
        "flags": {"on": True, "off": False, "none": None},
        "text": 'zürich ✓ "quoted" \\',
        "empty": {"list": [], "map": {}},
    }
    with store.transaction() as session:
        org = Organization(name="acme")
        session.add(org)
        session.flush()
        entry = AuditEntry(
            sequence="s-1",
            organization_id=org.id,
            actor="user:o",
            action="test",
            subject="app:web",
            payload=payload,
            tags=["b", "a", "b"],
        )
        session.add(entry)
    with store.transaction() as session:
        found = session.get(AuditEntry, entry.id)
        assert found is not None
        assert found.payload == payload and found.tags == ["b", "a", "b"]


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("plain", False),
        ("a\0b", True),
        ({"key": ["x", {"deep": "y\0"}]}, True),
        ({"ke\0y": 1}, True),
        ([1, 2.0, None, True, {"k": "v"}], False),
    ],
)
def test_a_nul_anywhere_in_a_json_value_is_found(value: object, found: bool) -> None:
    assert has_nul(value) is found
