"""Retention: the only way entries are ever deleted. With SHIPWAY_AUDIT_RETENTION_DAYS set,
whole UTC days older than that many days are deleted, at start and then daily; nothing
deletes a single entry."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from shipway.store import Store
from shipway.store.tables import AuditEntry
from shipway.store.types import utcnow

log = logging.getLogger(__name__)

#: Entries deleted per transaction, so that a prune never holds the store for long.
CHUNK = 10_000
EVERY = timedelta(days=1)


def cutoff(days: int, now: datetime) -> datetime:
    """The first moment kept: midnight UTC, DAYS days before today's."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=days)


def prune(store: Store, days: int, now: datetime | None = None) -> int:
    """Delete the entries of the days before the cutoff; how many went."""
    before = cutoff(days, now or utcnow())
    deleted = 0
    while True:
        with store.transaction() as session:
            ids = list(
                session.scalars(
                    select(AuditEntry.id).where(AuditEntry.created_at < before).limit(CHUNK)
                )
            )
            if not ids:
                return deleted
            session.execute(delete(AuditEntry).where(AuditEntry.id.in_(ids)))
        deleted += len(ids)


async def keep_pruning(store: Store, days: int) -> None:
    """Prune now, then once a day, until cancelled."""
    while True:
        try:
            deleted = await asyncio.to_thread(prune, store, days)
            if deleted:
                log.info("audit retention: deleted %d entries older than %d days", deleted, days)
        except Exception as e:  # the store is away: next time
            log.warning("audit retention: %s", e)
        await asyncio.sleep(EVERY.total_seconds())
