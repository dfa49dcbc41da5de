"""The organizations: those this browser holds a token of, every one on the platform for its
owners, and the form with which they create one (its owner token shown once, on the page the
form answers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shipway.web.api import ApiError
from shipway.web.viewer import Viewer, form, redirect, render, viewer

router = APIRouter(include_in_schema=False)


@router.get("/organizations")
async def organization_list(request: Request, who: Viewer = Depends(viewer)) -> Response:
    return await _page(request, who)


async def _page(
    request: Request,
    who: Viewer,
    *,
    made: dict[str, Any] | None = None,
    typed: str = "",
    problem: str | None = None,
    status: int = 200,
) -> Response:
    platform = await who.api.get("/orgs") if who.platform_owner else []
    page = render(
        request,
        "organizations.html",
        who,
        status=status,
        platform=platform,
        made=made,
        typed=typed,
        problem=problem,
    )
    if made is not None:  # the owner token is on this page only: no copy kept on the way
        page.headers["Cache-Control"] = "no-store"
    return page


@router.post("/organizations")
async def create_organization(request: Request, who: Viewer = Depends(viewer)) -> Response:
    """As `shipway orgs create NAME`; the answer is the page itself, with the new owner token."""
    fields = await form(request, who)
    name = fields.get("name", "").strip()
    if not name:
        problem = "Enter the organization's name."
        return await _page(request, who, typed=name, problem=problem, status=422)
    try:
        made = await who.api.call("POST", "/orgs", body={"name": name})
    except ApiError as e:
        if e.status == 403:
            return redirect(request, "/organizations", e.message, ok=False)
        return await _page(request, who, typed=name, problem=e.message, status=e.status)
    return await _page(request, who, made=made)
