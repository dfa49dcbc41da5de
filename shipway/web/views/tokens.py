"""The organization's API tokens: a list with their roles, prefixes and lifetimes, and the
forms that create one (its secret shown once, on the page the form answers) and revoke one."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shipway import durations
from shipway.web.api import ApiError
from shipway.web.viewer import Viewer, form, redirect, render, viewer

router = APIRouter(include_in_schema=False)

ROLES = ("owner", "deployer", "viewer")


@router.get("/tokens")
async def token_list(request: Request, who: Viewer = Depends(viewer)) -> Response:
    return await _page(request, who)


async def _page(
    request: Request,
    who: Viewer,
    *,
    made: dict[str, Any] | None = None,
    typed: dict[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    try:
        listed, refused = await who.api.get("/tokens"), None
    except ApiError as e:
        if e.status != 403:
            raise
        listed, refused = [], e.message
    page = render(
        request,
        "tokens.html",
        who,
        status=status,
        tokens=listed,
        refused=refused,
        made=made,
        roles=ROLES,
        typed=typed or {"role": "deployer"},
        problem=problem,
    )
    if made is not None:  # the secret is on this page only: no copy kept on the way
        page.headers["Cache-Control"] = "no-store"
    return page


@router.post("/tokens")
async def create_token(request: Request, who: Viewer = Depends(viewer)) -> Response:
    """As `shipway tokens create NAME --role ROLE --expires 30d`; the answer is the page itself,
    with the secret, so the secret never travels in a URL or a cookie."""
    fields = await form(request, who)
    name = fields.get("name", "").strip()
    expires = fields.get("expires", "").strip()
    body: dict[str, Any] = {"name": name, "role": fields.get("role", "deployer")}
    if not name:
        return await _page(
            request, who, typed=fields, problem="Enter the token's name.", status=422
        )
    if expires:
        lifetime = durations.parse(expires)
        if lifetime is None:
            problem = f"Expires must look like {durations.EXAMPLES}, or be empty; got {expires!r}."
            return await _page(request, who, typed=fields, problem=problem, status=422)
        body["expires_in"] = int(lifetime.total_seconds())
    try:
        made = await who.api.call("POST", "/tokens", body=body)
    except ApiError as e:
        if e.status == 403:
            return redirect(request, "/tokens", e.message, ok=False)
        return await _page(request, who, typed=fields, problem=e.message, status=e.status)
    return await _page(request, who, made=made)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(token_id: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    await form(request, who)
    try:
        revoked = await who.api.call("DELETE", "/tokens/" + quote(token_id, safe=""))
    except ApiError as e:
        return redirect(request, "/tokens", e.message, ok=False)
    return redirect(request, "/tokens", f"Revoked the token {revoked['name']}; it works no more.")
