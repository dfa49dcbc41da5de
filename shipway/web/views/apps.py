"""The apps: a list with their live state and a form to create one, and each app's page with its
settings, deployments, releases, config, scale, previews, add-ons and their backups, repository,
delivery figures and logs; the forms that change them."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shipway import durations
from shipway.addons.servers import Kind
from shipway.apps.service import PLANS
from shipway.client import git
from shipway.web.api import ApiError
from shipway.web.viewer import Dashboard, Viewer, form, redirect, render, viewer
from shipway.web.views import logs
from shipway.webhooks.verify import Provider

router = APIRouter(include_in_schema=False)

PRODUCTION = "production"
#: Deployments an app's timeline shows.
TIMELINE = 50
#: What an idle timeout field may hold to mean "never sleep".
NEVER = ("", "off", "never", "none")


@router.get("/")
async def home(who: Viewer = Depends(viewer)) -> Response:
    return redirect(who.request, "/apps")


@router.get("/apps")
async def app_list(request: Request, who: Viewer = Depends(viewer)) -> Response:
    rows = await _rows(who)
    template = "app_rows.html" if request.headers.get("hx-request") else "apps.html"
    return render(request, template, who, apps=rows)


@router.post("/apps")
async def create_app(request: Request, who: Viewer = Depends(viewer)) -> Response:
    fields = await form(request, who)
    name = fields.get("name", "").strip()
    if not name:
        return redirect(request, "/apps", "Enter the app's name.", False)
    done = await _change(who, "POST", "/apps", {"name": name})
    if isinstance(done, str):
        return redirect(request, "/apps", done, False)
    made = done["name"]
    remote = git.remote_url(str(request.base_url), made)
    return redirect(
        request,
        f"/apps/{made}",
        f"Created {made} → {done['url']}. Deploy it from its git repository: "
        f"git remote add shipway {remote} && git push shipway main",
    )


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
    overview, (app_id, start) = await asyncio.gather(
        who.api.get(f"/apps/{app}/overview", limit=TIMELINE),
        asyncio.to_thread(logs.app_log_start, ctx.store, who, app, logs.APP_TAIL),
    )
    info, addons = overview["info"], overview["addons"]
    production = _production(info)
    live = (production.get("release") or {}).get("version")
    first, backups = await asyncio.gather(
        asyncio.to_thread(logs.stored, ctx.store, logs.APP_KIND, app_id, start, logs.APP_TAIL),
        asyncio.gather(*(_backups(who, a) for a in addons)),
    )
    connection = info["connection"]
    if connection is not None:  # the API was called in-process: its host is not the browser's
        webhook = str(request.base_url).rstrip("/") + connection["webhook_path"]
        connection = {**connection, "webhook_url": webhook}
    return render(
        request,
        "app.html",
        who,
        app=info["app"],
        info=info,
        production=production,
        previews=[e for e in info["environments"] if e["kind"] != PRODUCTION],
        deployments=overview["deployments"],
        releases=overview["releases"],
        live=live,
        config=overview["env"],
        addons=[{**a, "backups": b} for a, b in zip(addons, backups, strict=True)],
        addon_kinds=[k.value for k in Kind],
        plans=PLANS,
        connection=connection,
        deliveries=info["deliveries"] if connection is not None else [],
        providers=[p.value for p in Provider],
        delivery=overview["delivery"],
        log_lines=first,
        log_after=first[-1]["seq"] if first else start,
    )


async def _backups(who: Viewer, addon: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A production add-on's backups; None for a preview's copy, or when this process runs no
    add-ons."""
    if addon["environment"] != PRODUCTION:
        return None
    try:
        found: list[dict[str, Any]] = await who.api.get(f"/addons/{addon['name']}/backups")
    except ApiError as e:
        if e.status == 503:
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


@router.post("/apps/{app}/settings")
async def settings(app: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    fields = await form(request, who)
    here = f"/apps/{app}#settings"
    body = _settings(fields)
    if isinstance(body, str):
        return redirect(request, here, body, False)
    done = await _change(who, "PATCH", f"/apps/{app}", body)
    if isinstance(done, str):
        return redirect(request, here, done, False)
    idle = done["idle_timeout"]
    sleeps = "never sleeps" if idle is None else f"sleeps after {idle} s without a request"
    return redirect(request, here, f"Saved {app}'s settings: it {sleeps}.")


def _settings(fields: dict[str, str]) -> dict[str, Any] | str:
    """The PATCH an app's settings form asks for, or what is wrong with it. A blank idle
    timeout turns sleeping off; a blank health check field keeps its value."""
    idle = fields.get("idle_timeout", "").strip()
    body: dict[str, Any] = {
        "idle_timeout": None if idle.lower() in NEVER else durations.seconds(idle),
        "build_network": fields.get("build_network") == "on",
    }
    if idle.lower() not in NEVER and body["idle_timeout"] is None:
        return f"Sleep after must be seconds (300) or like 90s, 15m or 2h, or blank; got {idle!r}"
    timeout = fields.get("health_timeout", "").strip()
    if timeout:
        body["health_timeout"] = durations.seconds(timeout)
        if body["health_timeout"] is None:
            return f"Health check timeout must be seconds (30) or like 2m; got {timeout!r}"
    for key in ("plan", "health_path"):
        if fields.get(key, "").strip():
            body[key] = fields[key].strip()
    return body


@router.post("/apps/{app}/addons")
async def create_addon(app: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    fields = await form(request, who)
    body: dict[str, Any] = {"kind": fields.get("kind", ""), "fork": fields.get("fork") == "on"}
    for key in ("name", "as"):
        if fields.get(key, "").strip():
            body[key] = fields[key].strip()
    done = await _change(who, "POST", f"/apps/{app}/addons", body)
    if isinstance(done, str):
        return redirect(request, f"/apps/{app}#addons", done, False)
    message = f"Created {done['name']} ({done['kind']}) and set {done['env_var']} on {app}."
    return redirect(request, f"/apps/{app}#addons", message)


@router.post("/apps/{app}/addons/{addon}/backups")
async def back_up(
    app: str, addon: str, request: Request, who: Viewer = Depends(viewer)
) -> Response:
    await form(request, who)
    done = await _change(who, "POST", f"/addons/{addon}/backups", None)
    if isinstance(done, str):
        return redirect(request, f"/apps/{app}#addons", done, False)
    message = f"Backed up {addon}: {done['id']} ({done['bytes']} bytes)."
    return redirect(request, f"/apps/{app}#addons", message)


@router.post("/apps/{app}/addons/{addon}/restore")
async def restore(
    app: str, addon: str, request: Request, who: Viewer = Depends(viewer)
) -> Response:
    fields = await form(request, who)
    backup = fields.get("backup", "")
    if not backup:
        return redirect(request, f"/apps/{app}#addons", "Choose a backup to restore.", False)
    if fields.get("confirm") != "on":
        message = f"Restoring replaces {addon}'s data: tick the box to confirm."
        return redirect(request, f"/apps/{app}#addons", message, False)
    done = await _change(
        who, "POST", f"/addons/{addon}/backups/{quote(backup, safe='')}/restore", None
    )
    if isinstance(done, str):
        return redirect(request, f"/apps/{app}#addons", done, False)
    return redirect(request, f"/apps/{app}#addons", f"Restored {addon} from {backup}.")


@router.post("/apps/{app}/connection")
async def connect(app: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    fields = await form(request, who)
    here = f"/apps/{app}#repository"
    secret = fields.get("secret", "").strip()
    made_secret = not secret
    body = {
        "provider": fields.get("provider", ""),
        "repo": fields.get("repo", "").strip(),
        "secret": secret or secrets.token_hex(32),
        "token": fields.get("token", "").strip() or None,
        "api_url": fields.get("api_url", "").strip() or None,
    }
    done = await _change(who, "PUT", f"/apps/{app}/connection", body)
    if isinstance(done, str):
        return redirect(request, here, done, False)
    webhook = str(request.base_url).rstrip("/") + done["webhook_path"]
    said = f"Connected {app} to {done['provider']} {done['repo']}. Webhook URL: {webhook}"
    if made_secret:
        said += f"; its secret (shown once, give it to the host now): {body['secret']}"
    return redirect(request, here, said + ".")


@router.post("/apps/{app}/connection/delete")
async def disconnect(app: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    await form(request, who)
    done = await _change(who, "DELETE", f"/apps/{app}/connection", None)
    if isinstance(done, str):
        return redirect(request, f"/apps/{app}#repository", done, False)
    return redirect(request, f"/apps/{app}#repository", f"Disconnected {app} from its repository.")


async def _change(who: Viewer, method: str, path: str, body: Any) -> Any:
    """The API's answer to a change, or its refusal as the message to show."""
    try:
        return await who.api.call(method, path, body=body) or {}
    except ApiError as e:
        return e.message
