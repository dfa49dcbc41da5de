"""Stored lines on SQLite and PostgreSQL: batched, idempotent, read back in order."""

from __future__ import annotations

from sqlalchemy import func, select

from shipway.logs import lines
from shipway.store import Store
from shipway.store.tables import LogLine


def _count(store: Store) -> int:
    with store.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(LogLine)) or 0)


def test_a_retried_batch_never_duplicates_a_line(store: Store) -> None:
    with store.transaction() as session:
        lines.insert(session, "build", 7, [(1, "one"), (2, "two"), (3, "three")])
    with store.transaction() as session:
        lines.insert(session, "build", 7, [(2, "TWO AGAIN"), (3, "three"), (4, "four")])
        lines.insert(session, "build", 7, [])
    assert _count(store) == 4
    with store.transaction() as session:
        assert lines.read(session, "build", 7) == [
            (1, "one"),
            (2, "two"),
            (3, "three"),
            (4, "four"),
        ]
        assert lines.last_seq(session, "build", 7) == 4


def test_a_duplicate_inside_one_batch_is_kept_once(store: Store) -> None:
    with store.transaction() as session:
        lines.insert(session, "build", 1, [(1, "a"), (1, "a"), (2, "b")])
    assert _count(store) == 2


def test_logs_are_kept_apart_by_kind_and_owner(store: Store) -> None:
    with store.transaction() as session:
        lines.insert(session, "build", 1, [(1, "build 1")])
        lines.insert(session, "build", 2, [(1, "build 2")])
        lines.insert(session, "function", 1, [(1, "run 1")])
    with store.transaction() as session:
        assert lines.read(session, "build", 1) == [(1, "build 1")]
        assert lines.read(session, "function", 1) == [(1, "run 1")]
        assert lines.last_seq(session, "build", 3) == 0


def test_read_pages_after_a_seq(store: Store) -> None:
    with store.transaction() as session:
        lines.insert(session, "build", 5, [(n, f"l{n}") for n in range(1, 251)])
    with store.transaction() as session:
        page = lines.read(session, "build", 5, after_seq=100, limit=50)
    assert [seq for seq, _ in page] == list(range(101, 151))


def test_unicode_and_long_lines_are_stored_as_is(store: Store) -> None:
    text = "ünïcødé ✓ " + "x" * 20_000
    with store.transaction() as session:
        lines.insert(session, "build", 9, [(1, text)])
    with store.transaction() as session:
        assert lines.read(session, "build", 9) == [(1, text)]
