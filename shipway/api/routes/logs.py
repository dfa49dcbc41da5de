"""/api/v1/builds/{id}/logs: a build's log as server-sent events, resumable, followed live.

Each line is `id: <seq>` / `event: line` / `data: {"seq": n, "line": "..."}`; the end is
`event: end` / `data: {"status": "..."}`, after which the response closes. A failure to read the
live tail is `event: error` / `data: {"code": "...", "message": "..."}`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from nats.js import JetStreamContext

from shipway.accounts.roles import Principal
from shipway.api.auth import principal_from, services
from shipway.deploys import service as deploys
from shipway.deploys.lifecycle import BuildStatus, is_terminal
from shipway.errors import ShipwayError, ValidationError
from shipway.logs import sse
from shipway.logs.follow import follow as follow_log
from shipway.store import Store
from shipway.store.tables import Build

router = APIRouter(tags=["builds"])

KIND = "build"
MAX_SEQ = 2**31 - 1
TERMINAL = frozenset(s.value for s in BuildStatus if is_terminal(s))
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "line events, then an end event carrying the build's status",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/builds/{build_id}/logs",
    summary="A build's log as server-sent events",
    response_class=StreamingResponse,
    responses=EVENT_STREAM,
)
async def build_logs(
    build_id: int,
    request: Request,
    follow: bool = Query(default=True, description="stay open until the build ends"),
    after: int | None = Query(default=None, ge=0, le=MAX_SEQ, description="skip seq ≤ after"),
    last_event_id: str | None = Header(default=None, description="resume: skip seq ≤ this"),
    principal: Principal = Depends(principal_from),
) -> StreamingResponse:
    """Stored lines first, then (with follow) the live tail; Last-Event-ID or after resumes."""
    ctx = services(request)
    status = await asyncio.to_thread(_status, ctx.store, principal, build_id)
    start = max(after or 0, _resume_point(last_event_id))
    js = ctx.nats.js if follow and ctx.nats is not None else None
    events = _events(ctx.store, js, build_id, start, status)
    return StreamingResponse(events, media_type="text/event-stream", headers=HEADERS)


def _resume_point(last_event_id: str | None) -> int:
    if last_event_id is None or not last_event_id.strip():
        return 0
    try:
        seq = int(last_event_id)
    except ValueError:
        seq = -1
    if not 0 <= seq <= MAX_SEQ:
        raise ValidationError(
            "Last-Event-ID must be the seq of a line", details={"last_event_id": last_event_id}
        )
    return seq


def _status(store: Store, principal: Principal, build_id: int) -> str:
    with store.transaction() as session:
        return deploys.get_build(session, principal, build_id).status


def _current_status(store: Store, build_id: int) -> str:
    with store.transaction() as session:
        build = session.get(Build, build_id)
        return build.status if build is not None else BuildStatus.CANCELLED.value


async def _events(
    store: Store, js: JetStreamContext | None, build_id: int, after: int, status: str
) -> AsyncIterator[str]:
    async def finished() -> str | None:
        current = await asyncio.to_thread(_current_status, store, build_id)
        return current if current in TERMINAL else None

    try:
        async for event in follow_log(
            store, js, KIND, build_id, after, live=js is not None, finished=finished
        ):
            if event.type == "line":
                data = json.dumps({"seq": event.seq, "line": event.line})
                yield sse.encode("line", data, id=event.seq)
            elif event.type == "end":
                yield _end(event.status or status)
                return
            else:
                yield sse.KEEP_ALIVE
    except ShipwayError as e:
        yield sse.encode("error", json.dumps({"code": e.code, "message": e.message}))
        return
    if status in TERMINAL:
        yield _end(status)


def _end(status: str) -> str:
    return sse.encode("end", json.dumps({"status": status}))
