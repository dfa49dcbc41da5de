"""/api/v1/builds/{id}/logs and /api/v1/apps/{app}/logs: a build's or a running app's log as
server-sent events, resumable, followed live.

Each line is `id: <seq>` / `event: line` / `data: {"seq": n, "line": "..."}`; a build's log
ends with `event: end` / `data: {"status": "..."}`, after which the response closes (an app's
log never ends). A failure to read the live tail is `event: error` /
`data: {"code": "...", "message": "..."}`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from shipway.accounts.roles import Principal
from shipway.api.auth import context, principal_from
from shipway.api.routing import Route
from shipway.api.schemas import Id
from shipway.apps import service as apps
from shipway.deploys import service as deploys
from shipway.deploys.lifecycle import BuildStatus, is_terminal
from shipway.errors import ValidationError
from shipway.logs import lines, stopping, stream
from shipway.runtime.applog import KIND as APP_KIND
from shipway.store import Store
from shipway.store.tables import Build

router = APIRouter(tags=["logs"], route_class=Route)

KIND = "build"
MAX_SEQ = 2**31 - 1
#: The most stored lines an app's log starts with.
MAX_TAIL = 10_000
#: Seconds of an app's log the live tail reads back from NATS for lines not stored yet (they
#: are stored within a second); reading its whole week there would take long.
APP_LOOKBACK = 60.0
TERMINAL = frozenset(s.value for s in BuildStatus if is_terminal(s))
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "line events, then an end event carrying the build's status",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
APP_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "line events; with follow, keep-alive comments while it is quiet",
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
    build_id: Id,
    request: Request,
    follow: bool = Query(default=True, description="stay open until the build ends"),
    after: int | None = Query(default=None, ge=0, le=MAX_SEQ, description="skip seq ≤ after"),
    last_event_id: str | None = Header(default=None, description="resume: skip seq ≤ this"),
    principal: Principal = Depends(principal_from),
) -> StreamingResponse:
    """Stored lines first, then (with follow) the live tail; Last-Event-ID or after resumes."""
    ctx = context(request)
    status = await asyncio.to_thread(_status, ctx.store, principal, build_id)
    start = max(after or 0, _resume_point(last_event_id))
    js = ctx.nats.js if follow and ctx.nats is not None else None

    async def finished() -> str | None:
        current = await asyncio.to_thread(_current_status, ctx.store, build_id)
        return current if current in TERMINAL else None

    events = stopping.until(
        ctx.stopping,
        stream.events(
            ctx.store,
            js,
            KIND,
            build_id,
            start,
            finished=finished,
            over=status if status in TERMINAL else None,
        ),
    )
    return StreamingResponse(events, media_type="text/event-stream", headers=HEADERS)


@router.get(
    "/apps/{app}/logs",
    summary="A running app's log as server-sent events",
    response_class=StreamingResponse,
    responses=APP_STREAM,
)
async def app_logs(
    app: str,
    request: Request,
    follow: bool = Query(default=True, description="stay open and send new lines as written"),
    tail: int = Query(default=100, ge=0, le=MAX_TAIL, description="start with the last N lines"),
    last_event_id: str | None = Header(default=None, description="resume: skip seq ≤ this"),
    principal: Principal = Depends(principal_from),
) -> StreamingResponse:
    """The output of every instance and what the runtime did with them, in one log: the last
    `tail` stored lines (or those after Last-Event-ID), then with follow the live tail."""
    ctx = context(request)
    app_id, last = await asyncio.to_thread(_app_log, ctx.store, principal, app)
    if last_event_id is not None and last_event_id.strip():
        start = _resume_point(last_event_id)
    else:
        start = max(last - tail, 0)
    js = ctx.nats.js if follow and ctx.nats is not None else None
    events = stopping.until(
        ctx.stopping,
        stream.events(
            ctx.store, js, APP_KIND, app_id, start, finished=None, over=None, lookback=APP_LOOKBACK
        ),
    )
    return StreamingResponse(events, media_type="text/event-stream", headers=HEADERS)


def _app_log(store: Store, principal: Principal, name: str) -> tuple[int, int]:
    """The app's id and the seq of its last stored line."""
    with store.transaction() as session:
        app = apps.get(session, principal, name)
        return app.id, lines.last_seq(session, APP_KIND, app.id)


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
