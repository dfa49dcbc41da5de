"""Logs in the page: a build's log and an app's live log, first as rendered HTML (readable
without a script), then followed as server-sent events carrying rendered lines."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from shipway.apps import service as apps
from shipway.deploys.lifecycle import BuildStatus, is_terminal
from shipway.errors import NotFound
from shipway.logs import lines, stopping, stream
from shipway.runtime import applog
from shipway.store import Store
from shipway.store.tables import Build
from shipway.web import ansi
from shipway.web.viewer import Dashboard, Refused, Viewer, viewer

router = APIRouter(include_in_schema=False)

APP_KIND = applog.KIND

BUILD = "build"
MAX_SEQ = 2**31 - 1
#: Lines a page starts with; the rest of a longer log follows by stream.
FIRST_LINES = 5000
#: Lines of an app's log its page starts with.
APP_TAIL = 200
TERMINAL = frozenset(s.value for s in BuildStatus if is_terminal(s))
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def rendered(seq: int, line: str) -> str:
    return json.dumps({"seq": seq, "html": ansi.html(line), "error": ansi.is_error(line)})


def stored(
    store: Store, kind: str, owner_id: int, after: int, limit: int
) -> list[dict[str, object]]:
    """Up to LIMIT stored lines after seq AFTER, rendered."""
    with store.transaction() as session:
        found = lines.read(session, kind, owner_id, after, limit)
    return [{"seq": s, "html": ansi.html(t), "error": ansi.is_error(t)} for s, t in found]


def app_log_start(store: Store, who: Viewer, app: str, tail: int) -> tuple[int, int]:
    """The app's id and the seq its page's log starts after; an unknown app is the 404 page,
    as the API's own refusal would be (a page that asks both may meet this one first)."""
    with store.transaction() as session:
        try:
            row = apps.get(session, who.principal, app)
        except NotFound as e:
            raise Refused(404, e.message) from e
        return row.id, max(lines.last_seq(session, APP_KIND, row.id) - tail, 0)


@router.get("/apps/{app}/builds/{build_id}/stream")
async def build_stream(
    app: str,
    build_id: int,
    request: Request,
    after: int = Query(default=0, ge=0, le=MAX_SEQ),
    last_event_id: str | None = Header(default=None),
    who: Viewer = Depends(viewer),
) -> Response:
    build = await who.api.get(f"/builds/{build_id}")
    ctx = Dashboard.of(request).services
    status = str(build["status"])

    async def finished() -> str | None:
        current = await asyncio.to_thread(_status, ctx.store, build_id)
        return current if current in TERMINAL else None

    events = stream.events(
        ctx.store,
        ctx.nats.js if ctx.nats is not None else None,
        BUILD,
        build_id,
        max(after, _seq(last_event_id)),
        finished=finished,
        over=status if status in TERMINAL else None,
        render=rendered,
        failure="failure",
    )
    return StreamingResponse(
        stopping.until(ctx.stopping, events), media_type="text/event-stream", headers=HEADERS
    )


@router.get("/apps/{app}/log/stream")
async def app_stream(
    app: str,
    request: Request,
    after: int = Query(default=0, ge=0, le=MAX_SEQ),
    last_event_id: str | None = Header(default=None),
    who: Viewer = Depends(viewer),
) -> Response:
    ctx = Dashboard.of(request).services
    app_id, _ = await asyncio.to_thread(app_log_start, ctx.store, who, app, 0)
    events = stream.events(
        ctx.store,
        ctx.nats.js if ctx.nats is not None else None,
        APP_KIND,
        app_id,
        max(after, _seq(last_event_id)),
        finished=None,
        over=None,
        lookback=60.0,
        render=rendered,
        failure="failure",
    )
    return StreamingResponse(
        stopping.until(ctx.stopping, events), media_type="text/event-stream", headers=HEADERS
    )


def _status(store: Store, build_id: int) -> str:
    with store.transaction() as session:
        build = session.get(Build, build_id)
        return build.status if build is not None else BuildStatus.CANCELLED.value


def _seq(last_event_id: str | None) -> int:
    try:
        seq = int(last_event_id or 0)
    except ValueError:
        return 0
    return seq if 0 <= seq <= MAX_SEQ else 0
