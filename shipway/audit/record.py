"""Write audit entries. Append-only: there is no update or delete here."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from shipway.events import Event
from shipway.store.tables import AuditEntry


def record(session: Session, event: Event, *, sequence: str | None = None) -> AuditEntry:
    """Add one entry for EVENT to SESSION; the caller's commit makes it durable with the change."""
    entry = AuditEntry(
        sequence=sequence or str(uuid.uuid4()),
        organization_id=event.organization_id,
        actor=event.actor,
        action=event.action,
        subject=event.subject,
        payload=dict(event.payload),
        tags=list(event.tags),
    )
    session.add(entry)
    return entry
