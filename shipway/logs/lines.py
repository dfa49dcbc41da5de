"""Stored log lines: the durable, searchable copy. Functions take the caller's Session."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shipway.store.tables import Base, LogLine
from shipway.store.types import utcnow

_KEY = ("kind", "owner_id", "seq")


def insert(session: Session, kind: str, owner_id: int, lines: Sequence[tuple[int, str]]) -> None:
    """Store (seq, line) pairs; a stored seq keeps its line, so a retried batch is harmless."""
    if not lines:
        return
    now = utcnow()
    rows = [
        {"kind": kind, "owner_id": owner_id, "seq": seq, "line": line, "created_at": now}
        for seq, line in lines
    ]
    table = Base.metadata.tables[LogLine.__tablename__]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql_insert(table).on_conflict_do_nothing(index_elements=_KEY), rows)
    elif dialect == "sqlite":
        session.execute(sqlite_insert(table).on_conflict_do_nothing(index_elements=_KEY), rows)
    else:
        have = set(
            session.scalars(
                select(LogLine.seq).where(
                    LogLine.kind == kind,
                    LogLine.owner_id == owner_id,
                    LogLine.seq.in_([seq for seq, _ in lines]),
                )
            )
        )
        fresh = [r for r in rows if r["seq"] not in have]
        if fresh:
            session.execute(table.insert(), fresh)


def read(
    session: Session, kind: str, owner_id: int, after_seq: int = 0, limit: int = 1000
) -> list[tuple[int, str]]:
    """Up to LIMIT stored lines with seq > AFTER_SEQ, in order."""
    rows = session.execute(
        select(LogLine.seq, LogLine.line)
        .where(LogLine.kind == kind, LogLine.owner_id == owner_id, LogLine.seq > after_seq)
        .order_by(LogLine.seq)
        .limit(limit)
    )
    return [(seq, line) for seq, line in rows]


def last_seq(session: Session, kind: str, owner_id: int) -> int:
    """The highest stored seq, 0 when nothing is stored yet."""
    found = session.scalar(
        select(func.max(LogLine.seq)).where(LogLine.kind == kind, LogLine.owner_id == owner_id)
    )
    return int(found or 0)
