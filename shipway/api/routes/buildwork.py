"""/api/v1/builder/…: what a builder on another machine asks the control plane for (see
shipway.builder.records.remote): where Temporal and NATS are, holding a build for an attempt, its
standing, the app's config (build args, secrets to mask), the pushed source, the log's lines,
and the layers or the image a release runs from. For the platform's owners: a builder's token
is one of theirs."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import FileResponse

from shipway import natsauth
from shipway.accounts.roles import Principal
from shipway.api.auth import context, principal_from
from shipway.api.routes.builders import platform_only
from shipway.api.routing import Route
from shipway.api.schemas import MAX_ID, Id, Int
from shipway.builder.records.local import LocalRecords
from shipway.context import Context
from shipway.deploys.launch import receive, sources_dir
from shipway.errors import NotFound, ValidationError
from shipway.logs import bus
from shipway.oci import transfer
from shipway.oci.podman import Podman
from shipway.releases.layers import LayerStore
from shipway.store.types import has_nul

router = APIRouter(prefix="/builder", tags=["builders"], route_class=Route)

MIB = 1024 * 1024
#: The largest layer a builder may send.
MAX_LAYER = 4096 * MIB
#: The largest image archive a builder may send.
MAX_IMAGE = 8192 * MIB
#: The largest batch of log lines at once.
MAX_LINES = 1000


def _records(request: Request, principal: Principal) -> tuple[Context, LocalRecords]:
    platform_only(principal)
    ctx = context(request)
    return ctx, LocalRecords(ctx.store, ctx.settings.data_dir)


@router.get("/connect", summary="Where a builder finds Temporal and NATS")
def connect(request: Request, principal: Principal = Depends(principal_from)) -> dict[str, Any]:
    ctx, _ = _records(request, principal)
    found: dict[str, Any] = {
        "temporal": ctx.addresses.get("temporal"),
        "namespace": ctx.settings.temporal_namespace,
        "nats": ctx.addresses.get("nats"),
    }
    if "nats" in ctx.processes:  # the embedded NATS: a builder's key to it, and no more
        seed = natsauth.seed_file(ctx.settings.data_dir, natsauth.Role.BUILDER)
        found["nats_nkey_seed"] = seed.read_text().strip()
    return found


@router.post("/builds/{build_id}/begin", summary="Hold a build for an attempt")
async def begin(
    build_id: Id,
    request: Request,
    deployment_id: int = Body(embed=True, ge=1, le=MAX_ID),
    attempt: str = Body(embed=True, max_length=64),
    builder: str = Body(embed=True, max_length=128),
    principal: Principal = Depends(principal_from),
) -> dict[str, Any]:
    """`begun` false: the build ended before it started; `previous`: why an earlier attempt
    did not finish."""
    _, records = _records(request, principal)
    begun = await asyncio.to_thread(records.begin, build_id, deployment_id, attempt, builder)
    return {"begun": begun is not None, "previous": begun.previous if begun else None}


@router.get("/builds/{build_id}/standing", summary="A build's status and the attempt holding it")
async def standing(
    build_id: Id, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, Any]:
    _, records = _records(request, principal)
    status, attempt = await asyncio.to_thread(records.standing, build_id)
    return {"status": status, "attempt": attempt}


@router.get(
    "/apps/{app_id}/config",
    summary="An app's config vars, for its builds' args and to mask its secrets in their logs",
)
async def app_config(
    app_id: Id, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, Any]:
    _, records = _records(request, principal)
    return (await asyncio.to_thread(records.config, app_id)).to_json()


@router.get("/builds/{build_id}/source", summary="The source a build was pushed with (a tar)")
def source(
    build_id: Id, request: Request, principal: Principal = Depends(principal_from)
) -> FileResponse:
    ctx, _ = _records(request, principal)
    path = sources_dir(ctx.settings.data_dir) / f"{build_id}.tar"
    if not path.is_file():
        raise NotFound(f"no source for build {build_id}")
    return FileResponse(path, media_type="application/x-tar")


@router.get("/builds/{build_id}/log", summary="The number of a build log's last stored line")
async def last_line(
    build_id: Id, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, int]:
    _, records = _records(request, principal)
    return {"last_seq": await asyncio.to_thread(records.lines.last_seq, "build", build_id)}


@router.post("/builds/{build_id}/log", status_code=204, summary="Store a build log's lines")
async def store_lines(
    build_id: Id,
    request: Request,
    lines: list[tuple[Int, str]] = Body(embed=True, max_length=MAX_LINES),
    principal: Principal = Depends(principal_from),
) -> Response:
    """[[seq, text], …]; lines already stored are kept as they are. Each is published live
    too (a retried one is dropped by the stream's duplicate window)."""
    ctx, records = _records(request, principal)
    if any(seq < 1 or has_nul(text) for seq, text in lines):
        raise ValidationError("lines are [seq, text] with seq ≥ 1 and no NUL in the text")
    await asyncio.to_thread(records.lines.insert, "build", build_id, lines)
    if ctx.nats is not None:
        for seq, text in lines:
            await bus.publish_line(ctx.nats.js, "build", build_id, seq, text)
    return Response(status_code=204)


@router.post("/builds/{build_id}/log/end", status_code=204, summary="End a build log")
async def end_log(
    build_id: Id,
    request: Request,
    seq: Int = Body(embed=True, ge=0),
    status: str = Body(embed=True, min_length=1, max_length=32),
    principal: Principal = Depends(principal_from),
) -> Response:
    """Tell the log's followers it ended with STATUS after line SEQ."""
    ctx, _ = _records(request, principal)
    if ctx.nats is not None:
        await bus.publish_end(ctx.nats.js, "build", build_id, seq, status)
    return Response(status_code=204)


@router.head("/layers/{digest}", summary="Whether the control plane has a layer")
def has_layer(
    digest: str, request: Request, principal: Principal = Depends(principal_from)
) -> Response:
    ctx, _ = _records(request, principal)
    return Response(status_code=200 if _layers(ctx).has(_digest(digest, "a layer")) else 404)


@router.put("/layers/{digest}", status_code=201, summary="Send a layer (its canonical tar)")
async def put_layer(
    digest: str, request: Request, principal: Principal = Depends(principal_from)
) -> Response:
    """Refused with 422 unless the tar's contents have exactly this digest."""
    ctx, _ = _records(request, principal)
    layers = _layers(ctx)
    wanted = _digest(digest, "a layer")
    archive = await receive(request.stream(), ctx.settings.data_dir, MAX_LAYER, what="a layer")
    try:
        await asyncio.to_thread(layers.receive, archive, wanted)
    except ValueError as e:
        raise ValidationError(f"layer {wanted}: {e}") from e
    finally:
        archive.unlink(missing_ok=True)
    return Response(status_code=201)


@router.head("/images/{digest}", summary="Whether the control plane has an image")
async def has_image(
    digest: str, request: Request, principal: Principal = Depends(principal_from)
) -> Response:
    ctx, _ = _records(request, principal)
    found = await transfer.exists(Podman(ctx.settings.data_dir), _digest(digest, "an image"))
    return Response(status_code=200 if found else 404)


@router.put("/images/{digest}", status_code=201, summary="Send an image (its docker-archive)")
async def put_image(
    digest: str, request: Request, principal: Principal = Depends(principal_from)
) -> Response:
    """Refused with 422 unless the archive holds this one image, unnamed, its config and
    every layer matching their digests; nothing of a refused archive is stored."""
    ctx, _ = _records(request, principal)
    wanted = _digest(digest, "an image")
    data_dir = ctx.settings.data_dir
    archive = await receive(request.stream(), data_dir, MAX_IMAGE, what="an image")
    try:
        await transfer.receive(Podman(data_dir), archive, wanted)
    except ValueError as e:
        raise ValidationError(f"image {wanted}: {e}") from e
    finally:
        archive.unlink(missing_ok=True)
    return Response(status_code=201)


def _layers(ctx: Context) -> LayerStore:
    return LayerStore(ctx.settings.data_dir / "layers")


def _digest(digest: str, what: str) -> str:
    hexdigest = digest.removeprefix("sha256:")
    if len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
        raise ValidationError(f"not {what} digest: {digest!r}; expected sha256:<64 hex>")
    return f"sha256:{hexdigest}"
