"""How the organization, or one of its apps, delivers to production: the four delivery (DORA)
metrics as cards, and day by day as charts, over a window of days."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from markupsafe import Markup

from shipway.web import charts
from shipway.web.charts import Point
from shipway.web.templating import duration
from shipway.web.viewer import Viewer, render, viewer

router = APIRouter(include_in_schema=False)

#: The windows the page offers, in days; the first is the one it shows.
WINDOWS = (30, 7, 90, 365)


@router.get("/delivery")
async def delivery_page(
    request: Request, days: str = "", app: str = "", who: Viewer = Depends(viewer)
) -> Response:
    window = days or str(WINDOWS[0])
    path = f"/apps/{quote(app, safe='')}/delivery" if app else "/delivery"
    figures, apps = await asyncio.gather(who.api.get(path, days=window), who.api.get("/apps"))
    return render(
        request,
        "delivery.html",
        who,
        delivery=figures,
        charts=delivery_charts(figures["series"]),
        apps=sorted(a["name"] for a in apps),
        chosen=app,
        windows=sorted(WINDOWS),
        window=figures["days"],
    )


def delivery_charts(series: list[dict[str, Any]]) -> list[Markup]:
    """The window's days as four charts, one per metric."""
    labels = [_label(day["day"]) for day in series]

    def points(key: str) -> list[Point]:
        return [Point(label, day[key]) for label, day in zip(labels, series, strict=True)]

    return [
        charts.bars("Deployments per day", points("deployments")),
        charts.line(
            "Median lead time from commit to live, by day", points("lead_time_median"), fmt=duration
        ),
        charts.bars("Failed or rolled-back changes per day", points("failures"), tone="bad"),
        charts.line(
            "Median time to restore, by day of the failure",
            points("time_to_restore_median"),
            fmt=duration,
        ),
    ]


def _label(day: str) -> str:
    return date.fromisoformat(day).strftime("%b %-d")
