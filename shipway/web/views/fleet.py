"""The builder fleet, for the platform's owners: its pools and builders as they are now, a
drain button per builder, and the build queue over the last hours as charts."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shipway.web import charts
from shipway.web.api import ApiError
from shipway.web.charts import Point
from shipway.web.templating import duration
from shipway.web.viewer import Viewer, form, redirect, render, viewer

router = APIRouter(include_in_schema=False)

#: The spans of history the page offers, in hours; the first one it shows.
SPANS = (24, 6, 72, 168)


@router.get("/fleet")
async def fleet_page(request: Request, hours: str = "", who: Viewer = Depends(viewer)) -> Response:
    span = hours or str(SPANS[0])
    history, (pools, builders, down) = await asyncio.gather(
        who.api.get("/fleet/history", hours=span), _live(who)
    )
    points = [(_label(h["start"], len(history)), h) for h in history]
    backlog = charts.bars(
        "Builds waiting for a builder, at each hour's end",
        [Point(label, h["backlog"]) for label, h in points],
    )
    waits = charts.line(
        "Median wait from queued to started, by the hour builds started",
        [Point(label, h["wait_median"]) for label, h in points],
        fmt=duration,
    )
    return render(
        request,
        "fleet.html",
        who,
        pools=pools,
        builders=builders,
        down=down,
        spans=SPANS,
        span=int(span) if span.isdigit() else SPANS[0],
        backlog=backlog,
        waits=waits,
        started=sum(h["started"] for h in history),
        longest=max((h["wait_max"] or 0 for h in history), default=0),
    )


async def _live(who: Viewer) -> tuple[list[Any], list[Any], str | None]:
    """The pools and builders now; with NATS down, none and why."""
    try:
        pools, builders = await asyncio.gather(
            who.api.get("/fleet/pools"), who.api.get("/builders")
        )
    except ApiError as e:
        if e.status != 503:
            raise
        return [], [], e.message
    return pools, sorted(builders, key=lambda b: (b["pool"], b["id"])), None


def _label(start: str, hours: int) -> str:
    """An hour's label: `14:00`, or `Mar 1 14:00` when the span is longer than a day."""
    moment = datetime.fromisoformat(start)
    return moment.strftime("%H:00" if hours <= 24 else "%b %-d %H:00")


@router.post("/fleet/builders/{builder_id}/drain")
async def drain(builder_id: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    await form(request, who)
    try:
        await who.api.call("POST", f"/builders/{quote(builder_id, safe='')}/drain")
    except ApiError as e:
        return redirect(request, "/fleet", e.message, ok=False)
    message = f"Draining {builder_id}: it takes no new build, finishes its own, then stops."
    return redirect(request, "/fleet", message)
