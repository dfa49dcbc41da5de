"""Who is looking at a page: their session, their principal and their view of the API; how a
page is rendered for them, and how their forms are read and checked."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment

from shipway.accounts.roles import Principal, Role
from shipway.apps.secretbox import SecretBox
from shipway.context import Context
from shipway.errors import ShipwayError
from shipway.web import api, session, templating
from shipway.web.api import Api

FLASH = "shipway_flash"
#: Largest form the dashboard reads; its biggest is a config value or a function's parameters.
MAX_FORM = 256 * 1024


class LoginNeeded(Exception):
    """The page needs a session and the request has none (or a stale one)."""


class Refused(Exception):
    """A form or request the dashboard will not act on: a bad CSRF token or origin, a body too
    large; shown as a page with STATUS."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Dashboard:
    """The parts every page needs, made once per app."""

    services: Context
    sealer: session.Sealer
    templates: Environment
    caller: api.Caller

    @classmethod
    def of(cls, request: Request) -> Dashboard:
        found: Dashboard = request.state.dashboard
        return found


@dataclass
class Viewer:
    request: Request
    session: session.Session
    principal: Principal
    api: Api

    @property
    def can_deploy(self) -> bool:
        return self.principal.role.allows(Role.DEPLOYER)

    @property
    def is_owner(self) -> bool:
        return self.principal.role.allows(Role.OWNER)

    @property
    def platform_owner(self) -> bool:
        return self.is_owner and self.principal.platform_admin


def dashboard(app: Any, services: Context) -> Dashboard:
    """The parts the dashboard's pages share when APP serves SERVICES."""
    box = SecretBox.load(services.settings.data_dir)
    return Dashboard(
        services,
        session.Sealer(box.derive("shipway dashboard session")),
        templating.environment(),
        api.Caller(app),
    )


async def viewer(request: Request) -> Viewer:
    """The request's viewer; LoginNeeded without a valid session."""
    board = Dashboard.of(request)
    found = board.sealer.open(request.cookies.get(session.COOKIE))
    if found is None:
        raise LoginNeeded
    try:
        principal = await asyncio.to_thread(board.services.tokens.authenticate, found.current.token)
    except ShipwayError as e:  # revoked or expired since the login
        raise LoginNeeded from e
    return Viewer(request, found, principal, Api(board.caller, found.current.token))


async def form(request: Request, viewer: Viewer | None = None) -> dict[str, str]:
    """The fields of a POSTed form; with VIEWER, Refused unless it is the session's own (its
    CSRF token, and no other origin)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and urlsplit(origin).netloc != request.url.netloc:
        raise Refused(403, f"a form from {origin} is not accepted here")
    body = await request.body()
    if len(body) > MAX_FORM:
        raise Refused(413, f"the form is larger than {MAX_FORM // 1024} KiB")
    try:
        text = body.decode()
    except UnicodeDecodeError as e:
        raise Refused(400, "the form is not UTF-8") from e
    fields = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    if viewer is not None:
        sent = request.headers.get(session.CSRF_HEADER) or fields.get(session.CSRF_FIELD)
        if not viewer.session.allows(sent):
            raise Refused(403, "the form's CSRF token is missing or stale: reload the page")
    return fields


def render(
    request: Request, template: str, viewer: Viewer | None = None, status: int = 200, **values: Any
) -> HTMLResponse:
    board = Dashboard.of(request)
    flash = _flash(request)
    page = board.templates.get_template(template).render(
        viewer=viewer, request=request, flash=flash, **values
    )
    response = HTMLResponse(page, status_code=status)
    if flash is not None:
        response.delete_cookie(FLASH, path="/")
    return response


def redirect(request: Request, to: str, message: str | None = None, ok: bool = True) -> Response:
    """303 to TO (a path of this site), with MESSAGE shown once on the page it lands on."""
    response = RedirectResponse(to if to.startswith("/") else "/", status_code=303)
    if message is not None:
        sealed = Dashboard.of(request).sealer.seal_text(json.dumps({"text": message, "ok": ok}))
        response.set_cookie(FLASH, sealed, httponly=True, samesite="strict", path="/")
    return response


def login_page(request: Request) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


def _flash(request: Request) -> dict[str, Any] | None:
    opened = Dashboard.of(request).sealer.open_text(request.cookies.get(FLASH), max_age=60)
    if opened is None:
        return None
    try:
        found: dict[str, Any] = json.loads(opened)
    except ValueError:
        return None
    return found
