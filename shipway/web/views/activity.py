"""The activity log: a search by action, subject, actor, time range and payload conditions, a
page of results at a time, and the new entries matching it as they are recorded."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.datastructures import QueryParams

from shipway.audit import search, tail
from shipway.audit.templates import render as in_words
from shipway.errors import ValidationError
from shipway.logs import stopping
from shipway.store.tables import AuditEntry
from shipway.web.api import ApiError
from shipway.web.viewer import Dashboard, Viewer, render, viewer
from shipway.web.views.logs import HEADERS

router = APIRouter(include_in_schema=False)

#: Entries a page shows; the largest id an entry can have.
PAGE = 50
MAX_ID = 2**31 - 1
FILTERS = ("action", "subject", "actor")
#: What a condition's value may be: its text is read as JSON when it parses, as text otherwise.
OPS = {
    "EQ": "equals",
    "NE": "is not",
    "IN": "is one of",
    "CONTAINS": "contains",
    "EXISTS": "exists",
    "GT": "is above",
    "LT": "is below",
}


@dataclass(frozen=True)
class Condition:
    """One row of the form's payload conditions, as typed."""

    path: str
    op: str
    value: str

    def as_json(self) -> dict[str, Any]:
        """The API's `where` object: a dotted path as keys, the value as JSON if it is."""
        if not self.path.strip():
            raise ApiError(422, "invalid", "a payload condition needs a path, like flag.gid")
        body: dict[str, Any] = {"op": self.op, "path": self.path.strip().split(".")}
        if self.op != "EXISTS" or self.value.strip():
            body["value"] = _value(self.value)
        return body


@dataclass(frozen=True)
class Search:
    """The form's fields, from a page's or a stream's query string."""

    fields: dict[str, str]
    conditions: list[Condition]

    @classmethod
    def of(cls, params: QueryParams) -> Search:
        fields = {k: params.get(k, "").strip() for k in (*FILTERS, "since", "until")}
        ops, values = params.getlist("op"), params.getlist("value")
        conditions = [
            Condition(path, _nth(ops, n, "EQ"), _nth(values, n, ""))
            for n, path in enumerate(params.getlist("path"))
            if path.strip() or _nth(values, n, "").strip()
        ]
        return cls(fields, conditions[: search.MAX_CONDITIONS + 1])

    def where(self) -> list[dict[str, Any]]:
        return [c.as_json() for c in self.conditions]

    def api_params(self) -> dict[str, Any]:
        """What the API's search takes, empty fields left out."""
        found: dict[str, Any] = {k: v for k, v in self.fields.items() if v}
        found["where"] = [json.dumps(c) for c in self.where()]
        return found

    def query_string(self) -> list[tuple[str, str]]:
        """The search again, as a link's query (the tail's, the next page's)."""
        pairs = [(k, v) for k, v in self.fields.items() if v]
        for c in self.conditions:
            pairs += [("path", c.path), ("op", c.op), ("value", c.value)]
        return pairs


def _nth(items: list[str], n: int, default: str) -> str:
    return items[n] if n < len(items) else default


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@router.get("/activity")
async def activity(request: Request, who: Viewer = Depends(viewer)) -> Response:
    wanted = Search.of(request.query_params)
    cursor = request.query_params.get("cursor") or None
    problem: str | None = None
    page: dict[str, Any] = {"items": [], "next": None}
    paging = {"cursor": cursor} if cursor else {}
    try:
        page = await who.api.get("/audit/entries", **wanted.api_params(), limit=PAGE, **paging)
    except ApiError as e:
        if e.status != 422:
            raise
        problem = e.message
    items = [_shown(e) for e in page["items"]]
    live = problem is None and cursor is None and not wanted.fields["until"]
    newest = max((e["id"] for e in items), default=0)
    return render(
        request,
        "activity.html",
        who,
        status=422 if problem else 200,
        wanted=wanted,
        rows=[*wanted.conditions, Condition("", "EQ", "")][: search.MAX_CONDITIONS],
        ops=OPS,
        problem=problem,
        entries=items,
        next=page["next"],
        cursor=cursor,
        query=wanted.query_string(),
        tail=live,
        newest=newest,
    )


@router.get("/activity/stream")
async def activity_stream(
    request: Request,
    after: int = Query(default=0, ge=0, le=MAX_ID),
    last_event_id: str | None = Header(default=None),
    who: Viewer = Depends(viewer),
) -> Response:
    wanted = Search.of(request.query_params)
    try:
        query = search.Query(
            who.principal.organization_id,
            action=wanted.fields["action"] or None,
            subject=wanted.fields["subject"] or None,
            actor=wanted.fields["actor"] or None,
            where=tuple(search.condition(c) for c in wanted.where()),
            limit=search.MAX_LIMIT,
        )
    except ValidationError as e:
        raise ApiError(422, e.code, e.message) from e
    ctx = Dashboard.of(request).services
    last = await asyncio.to_thread(tail.last_id, ctx.store)
    start = max(after, _seq(last_event_id))
    if not start or last - start > search.MAX_LIMIT:
        start = last  # a page from long ago: follow from now on
    row = Dashboard.of(request).templates.get_template("activity_row.html")

    def encode(entry: AuditEntry) -> str:
        return json.dumps({"id": entry.id, "html": row.render(e=_entry(entry))})

    entries = tail.follow(ctx.store, query, start, encode)
    return StreamingResponse(
        stopping.until(ctx.stopping, entries), media_type="text/event-stream", headers=HEADERS
    )


def _entry(entry: AuditEntry) -> dict[str, Any]:
    """An entry as the page's rows show it (as the API's search gives it)."""
    return _shown(
        {
            "id": entry.id,
            "actor": entry.actor,
            "action": entry.action,
            "subject": entry.subject,
            "payload": entry.payload,
            "created_at": entry.created_at.isoformat(),
            "text": in_words(entry),
        }
    )


def _shown(entry: dict[str, Any]) -> dict[str, Any]:
    """ENTRY with its payload as indented JSON, to be escaped as any text is."""
    return {**entry, "payload_json": json.dumps(entry["payload"], indent=2, ensure_ascii=False)}


def _seq(last_event_id: str | None) -> int:
    """The entry id an EventSource resumes after; 0 for none, or one no entry can have."""
    text = (last_event_id or "").strip()
    if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= MAX_ID:
        return int(text)
    return 0
