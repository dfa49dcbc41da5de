"""The apps: a list with their live state, and each app's page with its deployments, releases,
config, scale, previews, add-ons, delivery figures and logs; the forms that change them."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shipway.web.api import ApiError
from shipway.web.viewer import Dashboard, Viewer, form, redirect, render, viewer
from shipway.web.views import logs

router = APIRouter(include_in_schema=False)

PRODUCTION = "production"
#: Deployments an app's timeline shows.
TIMELINE = 50


@router.get("/")
async def home(who: Viewer = Depends(viewer)) -> Response:
    return redirect(who.request, "/apps")


@router.get("/apps")
async def app_list(request: Request, who: Viewer = Depends(viewer)) -> Response:
    rows = await _rows(who)
    template = "app_rows.html" if request.headers.get("hx-request") else "apps.html"
    return render(request, template, who, apps=rows)


async def _rows(who: Viewer) -> list[dict[str, Any]]:
    found = await who.api.get("/apps")
    infos = await asyncio.gather(*(_summary(who, a["name"]) for a in found))
    return [{**a, **info} for a, info in zip(found, infos, strict=True)]


async def _summary(who: Viewer, name: str) -> dict[str, Any]:
    info, latest = await asyncio.gather(
        who.api.get(f"/apps/{name}/info"), who.api.get(f"/apps/{name}/deployments", limit=1)
    )
    production = _production(info)
    return {
        "state": production.get("state"),
        "release": production.get("release"),
        "instances": production.get("instances", []),
        "latest": latest[0] if latest else None,
    }


def _production(info: dict[str, Any]) -> dict[str, Any]:
    for environment in info["environments"]:
        if environment["name"] == PRODUCTION:
            found: dict[str, Any] = environment
            return found
    return {}


@router.get("/apps/{app}")
async def app_page(app: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    ctx = Dashboard.of(request).services
    info, deployments, releases, config, addons, delivery, (app_id, start) = await asyncio.gather(
        who.api.get(f"/apps/{app}/info"),
        who.api.get(f"/apps/{app}/deployments", limit=TIMELINE),
        who.api.get(f"/apps/{app}/releases"),
        who.api.get(f"/apps/{app}/env"),
        who.api.get("/addons"),
        _delivery(who, f"/apps/{app}/delivery"),
        asyncio.to_thread(logs.app_log_start, ctx.store, who, app, logs.APP_TAIL),
    )
    production = _production(info)
    live = (production.get("release") or {}).get("version")
    first = await asyncio.to_thread(
        logs.stored, ctx.store, logs.APP_KIND, app_id, start, logs.APP_TAIL
    )
    return render(
        request,
        "app.html",
        who,
        app=info["app"],
        info=info,
        production=production,
        previews=[e for e in info["environments"] if e["kind"] != PRODUCTION],
        deployments=deployments,
        releases=releases,
        live=live,
        config=config,
        addons=[a for a in addons if a.get("app") == app],
        delivery=delivery,
        log_lines=first,
        log_after=first[-1]["seq"] if first else start,
    )


async def _delivery(who: Viewer, path: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = await who.api.get(path)
    except ApiError as e:
        if e.status == 404:
            return None
        raise
    return found


@router.get("/apps/{app}/builds/{build_id}")
async def build_page(
    app: str, build_id: int, request: Request, who: Viewer = Depends(viewer)
) -> Response:
    build = await who.api.get(f"/builds/{build_id}")
    ctx = Dashboard.of(request).services
    first = await asyncio.to_thread(
        logs.stored, ctx.store, logs.BUILD, build_id, 0, logs.FIRST_LINES
    )
    error = next((line for line in first if line["error"]), None)
    return render(
        request,
        "build.html",
        who,
        app=app,
        build=build,
        log_lines=first,
        log_after=first[-1]["seq"] if first else 0,
        first_error=error,
        ended=build["status"] in logs.TERMINAL,
    )


@router.post("/apps/{app}/rollback")
async def rollback(app: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    fields = await form(request, who)
    to = fields.get("to", "").strip()
    body = {"to": int(to)} if to.isdigit() else {}
    if to and not to.isdigit():
        return redirect(request, f"/apps/{app}", f"{to!r} is not a release version", False)
    done = await _change(who, "POST", f"/apps/{app}/rollback", body)
    if isinstance(done, str):
        return redirect(request, f"/apps/{app}", done, False)
    version = done.get("release")
    return redirect(request, f"/apps/{app}", f"Rolling back: deploying release v{version}.")


@router.post("/apps/{app}/config")
async def set_config(app: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    fields = await form(request, who)
    key = fields.get("key", "").strip()
    if not key:
        return redirect(request, f"/apps/{app}#config", "Enter the config var's name.", False)
    body = {"set": {key: fields.get("value", "")}, "secret": fields.get("secret") == "on"}
    done = await _change(who, "PATCH", f"/apps/{app}/env", body)
    if isinstance(done, str):
        return redirect(request, f"/apps/{app}#config", done, False)
    return redirect(request, f"/apps/{app}#config", f"Set {key}; the app restarts with it.")


@router.post("/apps/{app}/config/unset")
async def unset_config(app: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    fields = await form(request, who)
    key = fields.get("key", "")
    done = await _change(who, "PATCH", f"/apps/{app}/env", {"unset": [key]})
    if isinstance(done, str):
        return redirect(request, f"/apps/{app}#config", done, False)
    return redirect(request, f"/apps/{app}#config", f"Removed {key}.")


@router.post("/apps/{app}/scale")
async def scale(app: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    fields = await form(request, who)
    counts: dict[str, Any] = {}
    for key, value in fields.items():
        if key.startswith("count."):
            kind = key.removeprefix("count.")
            counts[kind] = int(value) if value.strip().isdigit() else value
    done = await _change(who, "PATCH", f"/apps/{app}/formation", counts)
    if isinstance(done, str):
        return redirect(request, f"/apps/{app}#scale", done, False)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(done.items()))
    return redirect(request, f"/apps/{app}#scale", f"Scaled to {shown}.")


@router.post("/apps/{app}/previews/{environment}/delete")
async def remove_preview(
    app: str, environment: str, request: Request, who: Viewer = Depends(viewer)
) -> Response:
    await form(request, who)
    done = await _change(who, "DELETE", f"/apps/{app}/environments/{environment}", None)
    if isinstance(done, str):
        return redirect(request, f"/apps/{app}#previews", done, False)
    return redirect(request, f"/apps/{app}#previews", f"Removed the preview {environment}.")


async def _change(who: Viewer, method: str, path: str, body: Any) -> Any:
    """The API's answer to a change, or its refusal as the message to show."""
    try:
        return await who.api.call(method, path, body=body) or {}
    except ApiError as e:
        return e.message
