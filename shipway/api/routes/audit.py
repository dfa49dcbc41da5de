"""/api/v1/audit/entries: search the activity log, and record entries from other services."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.exc import IntegrityError

from shipway.accounts.roles import Principal, Role
from shipway.api.auth import principal_from, services
from shipway.audit import ingest, search
from shipway.audit.templates import render
from shipway.errors import ValidationError
from shipway.store.tables import AuditEntry
from shipway.store.types import utcnow

router = APIRouter(prefix="/audit", tags=["audit"])


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "sequence": entry.sequence,
        "tenant": entry.organization_id,
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "payload": entry.payload,
        "tags": entry.tags,
        "created_at": entry.created_at.isoformat(),
        "text": render(entry),
    }


@router.get("/entries", summary="Search the activity log, newest first")
async def search_entries(
    request: Request,
    action: str | None = Query(None, max_length=128, description="exact, or a prefix: deploy.*"),
    subject: str | None = Query(None, max_length=255, description="TYPE:ID"),
    actor: str | None = Query(None, max_length=128),
    tag: list[str] = Query([], description="entries carrying every one of these tags"),
    since: str | None = Query(None, description="ISO-8601, or a duration ago: 15m, 2h, 7d"),
    until: str | None = Query(None, description="ISO-8601, or a duration ago"),
    where: list[str] = Query(
        [], description='payload conditions, each JSON {"op", "path": [keys], "value"}; ANDed'
    ),
    limit: int = Query(search.DEFAULT_LIMIT, ge=1, le=search.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=64, description="the `next` of the last page"),
    principal: Principal = Depends(principal_from),
) -> dict[str, Any]:
    """Entries are `{id, sequence, tenant, actor, action, subject, payload, tags, created_at,
    text}`, `text` being the entry in words. A search that runs past 5 s is stopped (422)."""
    ctx = services(request)
    now = utcnow()
    query = search.Query(
        principal.organization_id,
        action=action,
        subject=subject,
        actor=actor,
        tags=tuple(tag),
        since=search.moment(since, "since", now) if since else None,
        until=search.moment(until, "until", now) if until else None,
        where=tuple(search.condition(_json(raw)) for raw in where),
        limit=limit,
        cursor=cursor,
    )

    def run() -> dict[str, Any]:
        with ctx.store.transaction() as session:
            page = search.search(session, query)
            return {"items": [entry_json(e) for e in page.items], "next": page.next}

    return await asyncio.to_thread(run)


@router.post("/entries", status_code=201, summary="Record entries from another service")
async def record_entries(
    request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, int]:
    """The body is one entry `{sequence, actor, action, subject, payload, tags}` or a list of
    up to 1000. A bad entry refuses the whole batch (422, naming it); an entry whose sequence
    is stored already is acknowledged, not stored again."""
    principal.require(Role.DEPLOYER)
    ctx = services(request)
    entries = ingest.check_batch(_json(await request.body()))

    def store() -> ingest.Ingested:
        for attempt in range(2):
            try:
                with ctx.store.transaction() as session:
                    return ingest.ingest(session, principal.organization_id, entries)
            except IntegrityError:  # another request stored one of these meanwhile
                if attempt:
                    raise
        raise AssertionError("unreachable")

    done = await asyncio.to_thread(store)
    return {"stored": done.stored, "duplicates": done.duplicates}


def _json(raw: str | bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValidationError(f"not valid JSON: {e}") from e
    except RecursionError as e:
        raise ValidationError("the JSON is nested too deeply") from e
