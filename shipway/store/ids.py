"""Blocks of ids: a process reserves many ids with one write, then hands them out itself."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shipway.store.tables import IdBlock


def reserve(session: Session, name: str, count: int) -> range:
    """COUNT ids of NAME's table that no other reservation gets. The update comes first, so
    that it takes the write lock (or the row's lock) before the new end is read."""
    session.execute(
        update(IdBlock).where(IdBlock.name == name).values(next_id=IdBlock.next_id + count)
    )
    end = session.scalar(select(IdBlock.next_id).where(IdBlock.name == name))
    if end is None:
        raise LookupError(f"no id block named {name!r}")
    return range(end - count, end)
