"""/api/v1/images: the images Dockerfile builds start from, for the platform's owners."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from shipway.accounts.roles import Principal
from shipway.api.auth import context, principal_from
from shipway.api.routes.deployments import ARCHIVE_TYPES
from shipway.api.routing import Route
from shipway.api.schemas import Body
from shipway.errors import UnsupportedMedia
from shipway.oci import images
from shipway.oci.images import BASES, Images

log = logging.getLogger(__name__)

#: Making and importing are custom methods of the collection (`images:base`, as
#: `functions:apply`), so that no image's name is ever taken for them.
router = APIRouter(tags=["images"], route_class=Route)


class BaseCreate(Body):
    name: str = Field(max_length=200, description=f"the base to make: {' or '.join(BASES)}")


def _images(request: Request, principal: Principal) -> Images:
    images.authorize(principal)
    return Images(context(request).settings.data_dir)


async def _record(
    request: Request, principal: Principal, action: str, ref: str, payload: dict[str, Any]
) -> None:
    store = context(request).store
    await asyncio.to_thread(images.record, store, principal, action, ref, payload)


@router.get("/images", summary="The images in shipway's storage, newest first")
async def list_images(
    request: Request, principal: Principal = Depends(principal_from)
) -> list[dict[str, Any]]:
    """Each image's ID, names, size and creation; `app` and `build` for those shipway built."""
    return [image.to_json() for image in await _images(request, principal).listing()]


@router.post("/images:base", status_code=201, summary="Make a Debian base image on this machine")
async def make_base(
    body: BaseCreate, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, Any]:
    """Makes the base with mmdebstrap from the machine's apt sources (about 20 s), with the
    machine's own CAs trusted, and tags it as Docker Hub names it (debian:bookworm-slim is
    docker.io/library/debian:bookworm-slim), so `FROM debian:bookworm-slim` needs no
    registry."""
    made = await _images(request, principal).make_base(
        body.name, line=lambda text: log.info("making %s: %s", body.name, text)
    )
    reference = images.LIBRARY + body.name
    await _record(request, principal, "image.base", reference, made.to_json())
    return {"name": body.name, "reference": reference, **made.to_json()}


@router.post("/images:import", status_code=201, summary="Import an OCI or docker image archive")
async def import_archive(
    request: Request,
    tag: str | None = Query(default=None, max_length=255, description="a name for its image"),
    principal: Principal = Depends(principal_from),
) -> dict[str, Any]:
    """The body is the archive `podman save` or `docker save` wrote (up to 4 GiB); a body that
    is no image archive is refused and nothing is stored."""
    storage = _images(request, principal)
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in ARCHIVE_TYPES:
        raise UnsupportedMedia(
            f"the body must be an image archive ({', '.join(ARCHIVE_TYPES)}); got {kind or 'none'}"
        )
    declared = request.headers.get("content-length", "")
    upload = await storage.receive(
        request.stream(), declared=int(declared) if declared.isdigit() else None
    )
    try:
        loaded = await storage.load(upload, tag)
    finally:
        upload.unlink(missing_ok=True)
    payload = loaded.to_json()
    await _record(request, principal, "image.import", ",".join(loaded.references), payload)
    return payload


@router.delete("/images/{ref:path}", summary="Remove an image, or one of its names")
async def remove_image(
    ref: str,
    request: Request,
    force: bool = Query(default=False, description="also remove the containers that use it"),
    principal: Principal = Depends(principal_from),
) -> dict[str, Any]:
    """REF (URL-encoded) is a name[:tag], a digest or an image ID. A name is taken off its
    image, which is deleted once no name is left; an image a container uses is refused (409)
    unless `force`."""
    removed = await _images(request, principal).remove(ref, force)
    payload = {**removed.to_json(), "force": force}
    await _record(request, principal, "image.remove", ref, payload)
    return removed.to_json()
