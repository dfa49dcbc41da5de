"""Entries other services record: one contract for every way in (the API, NATS), all or
nothing per batch, and safe to retry.

An entry names its own `sequence` (a UUID): one whose sequence is stored already is
acknowledged and not stored again, so a producer that is unsure whether a batch arrived
sends it again. The tenant is never the entry's to say: it is the token's (API) or the
subject's (NATS).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from shipway.errors import ValidationError
from shipway.store.tables import AuditEntry
from shipway.store.types import has_nul, utcnow

MAX_BATCH = 1000
MAX_ENTRY_BYTES = 64 * 1024
MAX_TAGS = 32
FIELDS = ("sequence", "actor", "action", "subject", "payload", "tags")
ACTION = re.compile(r"[a-z][a-z0-9_-]*(\.[a-z0-9_-]+){1,7}")
SUBJECT = re.compile(r"[a-z][a-z0-9_-]{0,63}:[^\s\x00]{1,190}")
TEXT = re.compile(r"[^\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Incoming:
    """One entry as a producer sent it, checked against the contract."""

    sequence: str
    actor: str
    action: str
    subject: str
    payload: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ingested:
    stored: int
    #: Entries acknowledged without being stored again: their sequence was known.
    duplicates: int


def check_batch(raw: object) -> list[Incoming]:
    """The entries of a body: one entry (an object) or a batch (a list of 1-1000); any bad
    one refuses them all, naming it."""
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list) or not items:
        raise ValidationError("send one entry (an object) or a batch (a list of entries)")
    if len(items) > MAX_BATCH:
        raise ValidationError(
            f"a batch holds at most {MAX_BATCH} entries; this one has {len(items)}",
            details={"limit": MAX_BATCH, "got": len(items)},
        )
    checked = []
    for index, item in enumerate(items):
        try:
            checked.append(check(item))
        except ValidationError as e:
            where = f"entry {index}: " if isinstance(raw, list) else ""
            raise ValidationError(
                f"{where}{e.message}; nothing was stored", details={"index": index}
            ) from e
    return checked


def check(raw: object) -> Incoming:
    """One entry, checked; ValidationError names the first thing wrong with it."""
    if not isinstance(raw, Mapping):
        raise ValidationError("an entry is an object")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise ValidationError(
            f"unknown field {', '.join(map(str, unknown))}; an entry has {', '.join(FIELDS)}"
        )
    size = len(json.dumps(raw, ensure_ascii=False, default=str).encode())
    if size > MAX_ENTRY_BYTES:
        raise ValidationError(f"the entry is {size} bytes; at most {MAX_ENTRY_BYTES} are taken")
    sequence = raw.get("sequence")
    try:
        sequence = str(uuid.UUID(str(sequence))) if isinstance(sequence, str) else None
    except ValueError:
        sequence = None
    if sequence is None:
        raise ValidationError("sequence must be a UUID, unique to the entry")
    actor = _text(raw.get("actor"), "actor", 128)
    action = raw.get("action")
    if not isinstance(action, str) or not ACTION.fullmatch(action) or len(action) > 128:
        raise ValidationError(
            "action must be dotted lowercase words, e.g. flag.toggled", details={"field": "action"}
        )
    subject = raw.get("subject")
    if not isinstance(subject, str) or not SUBJECT.fullmatch(subject):
        raise ValidationError("subject must be TYPE:ID, e.g. flag:42", details={"field": "subject"})
    payload = raw.get("payload", {})
    if not isinstance(payload, dict):
        raise ValidationError("payload must be a JSON object", details={"field": "payload"})
    if has_nul(payload):
        raise ValidationError("the payload must not contain NUL characters (\\u0000)")
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise ValidationError(f"tags must be a list of at most {MAX_TAGS} strings")
    return Incoming(
        sequence=sequence,
        actor=actor,
        action=action,
        subject=subject,
        payload=payload,
        tags=tuple(_text(tag, "a tag", 64) for tag in tags),
    )


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not TEXT.fullmatch(value) or len(value) > limit:
        raise ValidationError(
            f"{what} must be 1-{limit} printable characters", details={"field": what}
        )
    return value


def ingest(
    session: Session,
    organization_id: int,
    entries: Sequence[Incoming],
    *,
    at: datetime | None = None,
) -> Ingested:
    """Store ENTRIES for the tenant in SESSION's transaction, each sequence once."""
    wanted = {entry.sequence: entry for entry in entries}
    known = set(
        session.scalars(select(AuditEntry.sequence).where(AuditEntry.sequence.in_(list(wanted))))
    )
    new = [entry for sequence, entry in wanted.items() if sequence not in known]
    now = at or utcnow()
    if new:
        session.execute(
            insert(AuditEntry),
            [
                {
                    "sequence": entry.sequence,
                    "organization_id": organization_id,
                    "actor": entry.actor,
                    "action": entry.action,
                    "subject": entry.subject,
                    "payload": entry.payload,
                    "tags": list(entry.tags),
                    "created_at": now,
                }
                for entry in new
            ],
        )
    return Ingested(stored=len(new), duplicates=len(entries) - len(new))
