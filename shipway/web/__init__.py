"""The dashboard: server-rendered pages over shipway's own API, with htmx and server-sent
events, served from the package (no CDN, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from shipway.web import viewer
from shipway.web.api import ApiError
from shipway.web.views import (
    activity,
    apps,
    auth,
    delivery,
    fleet,
    functions,
    images,
    logs,
    organizations,
    status,
    tokens,
)

STATIC = Path(__file__).parent / "static"
TITLES = {401: "Log in again", 403: "Not allowed", 404: "Not found", 409: "Conflict"}


def install(app: FastAPI) -> None:
    """Serve the dashboard's pages and assets from APP."""
    for views in (
        auth,
        apps,
        logs,
        functions,
        tokens,
        organizations,
        activity,
        fleet,
        delivery,
        images,
        status,
    ):
        app.include_router(views.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(viewer.LoginNeeded, _login)
    app.add_exception_handler(ApiError, _refused)
    app.add_exception_handler(viewer.Refused, _refused)


async def _login(request: Request, exc: Exception) -> Response:
    return viewer.login_page(request)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError | viewer.Refused)
    if exc.status == 401:
        return viewer.login_page(request)
    try:
        who = await viewer.viewer(request)
    except viewer.LoginNeeded:
        who = None
    return viewer.render(
        request,
        "error.html",
        who,
        status=exc.status,
        title=TITLES.get(exc.status, "Refused"),
        message=exc.message,
    )
