"""The images Dockerfile builds start from, for the platform's owners: a list of them, the form
that makes a Debian base image on this machine, and a remove button for each."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shipway.oci.images import BASES
from shipway.web.api import ApiError
from shipway.web.viewer import Viewer, form, redirect, render, viewer

router = APIRouter(include_in_schema=False)


@router.get("/images")
async def image_list(request: Request, who: Viewer = Depends(viewer)) -> Response:
    """The API lists images to platform owners only; anyone else sees why, not an error page."""
    listed: list[dict[str, Any]] = []
    refused = None
    try:
        listed = await who.api.get("/images")
    except ApiError as e:
        if e.status not in (403, 503):
            raise
        refused = e.message
    return render(request, "images.html", who, images=listed, refused=refused, bases=list(BASES))


@router.post("/images/base")
async def make_base(request: Request, who: Viewer = Depends(viewer)) -> Response:
    """As `shipway images base NAME`; it runs while the browser waits (about 20 s)."""
    fields = await form(request, who)
    name = fields.get("name", "").strip()
    try:
        made = await who.api.call("POST", "/images:base", body={"name": name})
    except ApiError as e:
        return redirect(request, "/images", e.message, ok=False)
    return redirect(request, "/images", f"Made the base image {made['reference']}.")


@router.post("/images/remove")
async def remove_image(request: Request, who: Viewer = Depends(viewer)) -> Response:
    """The reference travels in the form, not the URL: a name holds slashes and colons."""
    fields = await form(request, who)
    ref = fields.get("ref", "").strip()
    if not ref:
        return redirect(request, "/images", "Say which image to remove.", ok=False)
    try:
        removed = await who.api.call("DELETE", "/images/" + quote(ref, safe=""))
    except ApiError as e:
        return redirect(request, "/images", e.message, ok=False)
    gone = ", ".join(removed["deleted"]) or "no image deleted"
    return redirect(request, "/images", f"Removed {removed['reference']} ({gone}).")
