"""/api/v1/audit/entries: search the activity log, and record entries from other services."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import IntegrityError

from shipway import jsontext, metrics
from shipway.accounts.roles import Principal, Role
from shipway.api.auth import context, principal_from
from shipway.api.routing import Route
from shipway.api.schemas import MAX_ID
from shipway.audit import ingest, search, tail
from shipway.audit.templates import render
from shipway.errors import ValidationError
from shipway.logs import stopping
from shipway.store.tables import AuditEntry
from shipway.store.types import utcnow

router = APIRouter(prefix="/audit", tags=["audit"], route_class=Route)


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


def _query(
    principal: Principal,
    action: str | None,
    subject: str | None,
    actor: str | None,
    tag: list[str],
    where: list[str],
    **rest: Any,
) -> search.Query:
    return search.Query(
        principal.organization_id,
        action=action,
        subject=subject,
        actor=actor,
        tags=tuple(tag),
        where=tuple(search.condition(jsontext.loads(raw, "a where condition")) for raw in where),
        **rest,
    )


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
    ctx = context(request)
    now = utcnow()
    query = _query(
        principal,
        action,
        subject,
        actor,
        tag,
        where,
        since=search.moment(since, "since", now) if since else None,
        until=search.moment(until, "until", now) if until else None,
        limit=limit,
        cursor=cursor,
    )

    def run() -> dict[str, Any]:
        with ctx.store.transaction() as session:
            page = search.search(session, query)
            return {"items": [entry_json(e) for e in page.items], "next": page.next}

    return await asyncio.to_thread(run)


@router.get(
    "/tail",
    summary="Follow new entries as they are recorded (server-sent events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def tail_entries(
    request: Request,
    action: str | None = Query(None, max_length=128, description="exact, or a prefix: deploy.*"),
    subject: str | None = Query(None, max_length=255),
    actor: str | None = Query(None, max_length=128),
    tag: list[str] = Query([]),
    where: list[str] = Query([], description="payload conditions, as for the search"),
    last_event_id: str | None = Header(None, description="resume after this entry's id"),
    principal: Principal = Depends(principal_from),
) -> StreamingResponse:
    """Each new entry matching the filters is `id: ID` / `event: entry` / `data: ENTRY` (as the
    search gives it); quiet stretches carry keep-alive comments. Last-Event-ID resumes."""
    ctx = context(request)
    query = _query(principal, action, subject, actor, tag, where, limit=search.MAX_LIMIT)
    if last_event_id and last_event_id.strip():
        start = _resume_point(last_event_id.strip())
    else:
        start = await asyncio.to_thread(tail.last_id, ctx.store)
    entries = tail.follow(ctx.store, query, start, lambda e: json.dumps(entry_json(e)))
    events = stopping.until(ctx.stopping, entries)
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _resume_point(last_event_id: str) -> int:
    """The entry id a Last-Event-ID names; one no entry can have is refused."""
    digits = last_event_id.isascii() and last_event_id.isdigit() and len(last_event_id) <= 10
    if not digits or int(last_event_id) > MAX_ID:
        raise ValidationError(f"Last-Event-ID must be the id of an entry, 0 to {MAX_ID}")
    return int(last_event_id)


@router.post("/entries", status_code=201, summary="Record entries from another service")
async def record_entries(
    request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, int]:
    """The body is one entry `{sequence, actor, action, subject, payload, tags}` or a list of
    up to 1000. A bad entry refuses the whole batch (422, naming it); an entry whose sequence
    is stored already is acknowledged, not stored again."""
    principal.require(Role.DEPLOYER)
    ctx = context(request)

    def store(entries: list[ingest.Incoming]) -> ingest.Ingested:
        for attempt in range(2):
            try:
                with ctx.store.transaction() as session:
                    return ingest.ingest(session, principal.organization_id, entries)
            except IntegrityError:  # another request stored one of these meanwhile
                if attempt:
                    raise
        raise AssertionError("unreachable")

    body = await request.body()
    with metrics.audit_batch("api"):
        entries = ingest.check_batch(jsontext.loads(body, "the body"))
        done = await asyncio.to_thread(store, entries)
    metrics.audit_stored("api", 1, done.stored, done.duplicates)
    return {"stored": done.stored, "duplicates": done.duplicates}
