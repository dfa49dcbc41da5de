"""Logging in and out with an API token, and switching between the organizations a browser
holds a token of."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shipway.web import session
from shipway.web.api import Api, ApiError
from shipway.web.viewer import Dashboard, Viewer, form, redirect, render, viewer

router = APIRouter(include_in_schema=False)


@router.get("/login")
async def login_form(request: Request, next: str = "/apps") -> Response:
    return render(request, "login.html", next=_local(next))


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await form(request)
    token = fields.get("token", "").strip()
    goto = _local(fields.get("next", "/apps"))
    board = Dashboard.of(request)
    if not token:
        return render(request, "login.html", status=422, next=goto, error="Enter an API token.")
    try:
        who = await Api(board.caller, token).call("POST", "/login")
    except ApiError as e:
        return render(request, "login.html", status=e.status, next=goto, error=e.message)
    login = session.Login(token, str(who["organization"]), str(who["role"]))
    known = board.sealer.open(request.cookies.get(session.COOKIE))
    started = known.adding(login) if known is not None else session.Session.start(login)
    return _with_session(request, redirect(request, goto), started)


@router.post("/logout")
async def logout(request: Request, who: Viewer = Depends(viewer)) -> Response:
    await form(request, who)
    response = redirect(request, "/login")
    response.delete_cookie(session.COOKIE, path="/")
    return response


@router.post("/switch")
async def switch(request: Request, who: Viewer = Depends(viewer)) -> Response:
    fields = await form(request, who)
    organization = fields.get("organization", "")
    switched = who.session.switched(organization)
    if switched is None:
        return redirect(request, "/apps", f"this browser holds no token of {organization!r}", False)
    return _with_session(request, redirect(request, "/apps"), switched)


def _with_session(request: Request, response: Response, found: session.Session) -> Response:
    response.set_cookie(
        session.COOKIE,
        Dashboard.of(request).sealer.seal(found),
        max_age=session.MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _local(path: str) -> str:
    """PATH if it is a path of this site; else the apps page (never a redirect elsewhere)."""
    if path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/apps"
