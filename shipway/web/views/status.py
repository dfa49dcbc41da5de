"""The platform's parts and their state, as /healthz reports them: the page shows a degraded
platform (a 503 from /healthz) as plainly as a healthy one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shipway.web.api import refusal
from shipway.web.viewer import Dashboard, Viewer, render, viewer

router = APIRouter(include_in_schema=False)

#: Keys of a part that the page shows as its own columns, not among its details.
SHOWN = ("status", "address", "error")


@router.get("/status")
async def status_page(request: Request, who: Viewer = Depends(viewer)) -> Response:
    """/healthz is outside /api/v1 and needs no token: asked through the caller directly."""
    answer = await Dashboard.of(request).caller.request("GET", "/healthz")
    if answer.status not in (200, 503):
        raise refusal(answer)
    report: dict[str, Any] = answer.json()
    parts = [
        {
            "name": name,
            **{key: part.get(key) for key in SHOWN},
            "details": {k: v for k, v in part.items() if k not in SHOWN and k != "servers"},
        }
        for name, part in report.get("components", {}).items()
    ]
    return render(
        request,
        "status.html",
        who,
        overall=report.get("status", "unknown"),
        version=report.get("version"),
        parts=parts,
        network=report.get("sandbox_network") or {},
    )
