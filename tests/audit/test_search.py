"""Searching the activity log on SQLite and PostgreSQL: every op, filters, pagination, and
what bad conditions get."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, text, update

from shipway.audit import indexes
from shipway.audit.record import record
from shipway.audit.search import Query, SearchTimeout, condition, search
from shipway.errors import ValidationError
from shipway.events import Event
from shipway.store import Store
from shipway.store.tables import AuditEntry, Organization
from shipway.store.types import utcnow
from tests.helpers import migrated_store

PAYLOADS: dict[str, dict[str, Any]] = {
    "a": {"flag": {"gid": "gid://plat/Flag/1", "on": True}, "count": 3, "labels": ["x", "y"]},
    "b": {"flag": {"gid": "gid://plat/Flag/2", "on": False}, "count": 10, "note": "big rollout"},
    "c": {"flag": {"gid": None}, "count": "3", "labels": ["y", 3], "when": "2026-01-02"},
    "d": {"count": 2.5, "when": "2025-12-31"},
}


@pytest.fixture
def tenant(store: Store) -> int:
    return make_tenant(store)


def make_tenant(store: Store) -> int:
    """Two tenants with entries; the first one's id."""
    with store.transaction() as session:
        orgs = [Organization(name="acme"), Organization(name="globex")]
        session.add_all(orgs)
        session.flush()
        for name, payload in PAYLOADS.items():
            action = "deployment.live" if name in "ab" else "app.create"
            tags = ("prod",) if name in "ac" else ()
            record(session, Event(orgs[0].id, f"user:{name}", action, f"app:{name}", payload, tags))
        record(session, Event(orgs[1].id, "user:z", "deployment.live", "app:a", PAYLOADS["a"]))
        return orgs[0].id


def found(store: Store, tenant: int, **filters: Any) -> list[str]:
    where = tuple(condition(c) for c in filters.pop("where", []))
    with store.transaction() as session:
        page = search(session, Query(tenant, where=where, **filters))
        return [entry.subject.removeprefix("app:") for entry in page.items]


@pytest.mark.parametrize(
    ("where", "subjects"),
    [
        ({"op": "EQ", "path": ["flag", "gid"], "value": "gid://plat/Flag/1"}, ["a"]),
        ({"op": "EQ", "path": ["flag", "on"], "value": False}, ["b"]),
        ({"op": "EQ", "path": ["flag", "gid"], "value": None}, ["c"]),
        ({"op": "EQ", "path": ["count"], "value": 3}, ["a"]),  # not the string "3"
        ({"op": "EQ", "path": ["count"], "value": "3"}, ["c"]),
        ({"op": "NE", "path": ["count"], "value": 3}, ["d", "c", "b"]),
        ({"op": "IN", "path": ["count"], "value": [10, 2.5, "nope"]}, ["d", "b"]),
        ({"op": "CONTAINS", "path": ["labels"], "value": "y"}, ["c", "a"]),
        ({"op": "CONTAINS", "path": ["labels"], "value": 3}, ["c"]),
        ({"op": "CONTAINS", "path": ["note"], "value": "roll"}, ["b"]),
        ({"op": "EXISTS", "path": ["labels"]}, ["c", "a"]),
        ({"op": "EXISTS", "path": ["flag"], "value": False}, ["d"]),
        ({"op": "GT", "path": ["count"], "value": 2.9}, ["b", "a"]),  # not the string "3"
        ({"op": "LT", "path": ["count"], "value": 3}, ["d"]),
        ({"op": "GT", "path": ["when"], "value": "2026-01-01"}, ["c"]),
    ],
)
def test_each_op(store: Store, tenant: int, where: dict[str, Any], subjects: list[str]) -> None:
    assert found(store, tenant, where=[where]) == subjects


def test_filters_combine_and_stay_within_the_tenant(store: Store, tenant: int) -> None:
    assert found(store, tenant) == ["d", "c", "b", "a"]
    assert found(store, tenant, action="deployment.*") == ["b", "a"]
    assert found(store, tenant, action="deployment") == []
    assert found(store, tenant, action="app.create") == ["d", "c"]
    assert found(store, tenant, subject="app:a") == ["a"]
    assert found(store, tenant, actor="user:b") == ["b"]
    assert found(store, tenant, tags=("prod",)) == ["c", "a"]
    where = [{"op": "EXISTS", "path": ["count"]}, {"op": "GT", "path": ["count"], "value": 2}]
    assert found(store, tenant, action="deployment.*", where=where) == ["b", "a"]


def test_a_time_range(store: Store, tenant: int) -> None:
    now = utcnow()
    with store.transaction() as session:
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.subject.in_(["app:a", "app:b"]))
            .values(created_at=now - timedelta(days=2))
        )
    assert found(store, tenant, since=now - timedelta(days=1)) == ["d", "c"]
    assert found(store, tenant, until=now - timedelta(days=1)) == ["b", "a"]


def test_pages_stay_stable_while_entries_are_added(store: Store, tenant: int) -> None:
    with store.transaction() as session:
        first = search(session, Query(tenant, limit=3))
    assert [e.subject for e in first.items] == ["app:d", "app:c", "app:b"]
    assert first.next is not None
    with store.transaction() as session:
        record(session, Event(tenant, "user:n", "app.create", "app:new"))
    with store.transaction() as session:
        second = search(session, Query(tenant, limit=3, cursor=first.next))
    assert [e.subject for e in second.items] == ["app:a"] and second.next is None


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"op": "LIKE", "path": ["a"], "value": 1}, "unknown op 'LIKE'"),
        ({"op": "EQ", "path": "flag.gid", "value": 1}, "path must be a list"),
        ({"op": "EQ", "path": [], "value": 1}, "path must be a list"),
        ({"op": "EQ", "path": ["a'); DROP TABLE audit_entries; --"], "value": 1}, "path must"),
        ({"op": "EQ", "path": [1], "value": 1}, "path must be a list"),
        ({"op": "GT", "path": ["a"], "value": True}, "GT takes a number or a string"),
        ({"op": "LT", "path": ["a"], "value": [1]}, "LT takes a number or a string"),
        ({"op": "EQ", "path": ["a"], "value": {"b": 1}}, "EQ takes a string, number"),
        ({"op": "IN", "path": ["a"], "value": 1}, "IN takes a list"),
        ({"op": "EXISTS", "path": ["a"], "value": "yes"}, "EXISTS takes true or false"),
        ({"op": "EQ", "path": ["a"], "value": 1, "sql": "x"}, "not sql"),
        (["EQ"], "a condition is an object"),
    ],
)
def test_a_bad_condition_says_what_is_wrong(raw: Any, says: str) -> None:
    with pytest.raises(ValidationError, match=says.replace("(", r"\(")):
        condition(raw)


def test_a_forged_cursor_is_refused(store: Store, tenant: int) -> None:
    for cursor in ("nope", "aWQ6LTE", "eDox"):
        with pytest.raises(ValidationError, match="not one a search handed out"):
            found(store, tenant, cursor=cursor)


def test_a_search_past_its_time_is_stopped(store: Store, tenant: int) -> None:
    with store.transaction() as session:
        session.execute(
            insert(AuditEntry),
            [
                {
                    "sequence": str(uuid.uuid4()),
                    "organization_id": tenant,
                    "actor": "user:bulk",
                    "action": "bulk.made",
                    "subject": f"thing:{i}",
                    "payload": {"note": f"entry number {i}", "list": [i, str(i)]},
                    "tags": [],
                }
                for i in range(20_000)
            ],
        )
    slow = Query(tenant, where=(condition({"op": "CONTAINS", "path": ["note"], "value": "zz"}),))
    with store.transaction() as session, pytest.raises(SearchTimeout, match=r"ran past 0\.001 s"):
        search(session, slow, timeout=0.001)
    with store.transaction() as session:  # the store is fine afterwards, and so is a search
        assert search(session, slow).items == []


def test_sqlite_answers_an_indexed_path_from_its_index(tmp_path: Path) -> None:
    # PostgreSQL answers every path from its GIN index (migration 0007).
    store = migrated_store(f"sqlite:///{tmp_path / 'shipway.db'}")
    tenant = make_tenant(store)
    [name] = indexes.ensure(store.engine, [("flag", "gid")])
    assert indexes.ensure(store.engine, [("flag", "gid")]) == [name]  # made once
    assert found(store, tenant, where=[GID_1]) == ["a"]
    query = Query(tenant, where=(condition(GID_1),))
    with store.transaction() as session:
        statement = search_statement(session, query)
        plan = session.execute(text(f"EXPLAIN QUERY PLAN {statement}")).all()
    assert any(name in str(row) for row in plan), plan


GID_1 = {"op": "EQ", "path": ["flag", "gid"], "value": "gid://plat/Flag/1"}


def search_statement(session: Any, query: Query) -> str:
    """The SQL a search runs, with its values written in (for EXPLAIN)."""
    from shipway.audit import search as module

    captured: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM audit_entries" in statement:
            captured.append(statement.replace("?", "{}").format(*(repr(p) for p in params)))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        module.search(session, query)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return captured[-1]


def test_indexing_a_path_changes_no_result(store: Store, tenant: int) -> None:
    before = {op: found(store, tenant, where=[c]) for op, c in OP_CASES.items()}
    [name] = indexes.ensure(store.engine, [("flag", "gid")])
    assert name in index_names(store)
    assert {op: found(store, tenant, where=[c]) for op, c in OP_CASES.items()} == before
    assert before["eq"] == ["a"] and before["in"] == ["b", "a"]


def index_names(store: Store) -> set[str]:
    """Expression indexes included, which SQLAlchemy's inspector leaves out on SQLite."""
    query = (
        "SELECT indexname FROM pg_indexes WHERE tablename = 'audit_entries'"
        if store.dialect == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'index'"
    )
    with store.transaction() as session:
        return set(session.scalars(text(query)))


OP_CASES = {
    "eq": GID_1,
    "in": {
        "op": "IN",
        "path": ["flag", "gid"],
        "value": ["gid://plat/Flag/1", "gid://plat/Flag/2"],
    },
    "ne": {"op": "NE", "path": ["flag", "gid"], "value": "gid://plat/Flag/1"},
    "null": {"op": "EQ", "path": ["flag", "gid"], "value": None},
}
