"""Deployments and builds: start one from an uploaded source, list and inspect them."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from shipway import eventbus
from shipway.accounts.roles import Principal, Role
from shipway.api.auth import context, principal_from
from shipway.api.routes.apps import app_url, tenant
from shipway.api.routing import Route
from shipway.api.schemas import DeploymentOut, Id, Push
from shipway.apps import service as apps
from shipway.context import Context
from shipway.deploys import launch, service
from shipway.deploys.lifecycle import BuildStatus, DeploymentStatus, settled
from shipway.errors import UnsupportedMedia
from shipway.fleet import registry
from shipway.fleet.lifecycle import BuilderState
from shipway.gitserver import archive, commits, repos
from shipway.store.tables import App, Build, Deployment, Environment, Release

router = APIRouter(tags=["deployments"], route_class=Route)

ARCHIVE_TYPES = ("application/x-tar", "application/gzip", "application/octet-stream")

#: How many rows a listing returns at most.
Limit = Annotated[int, Query(ge=1, le=500, description="the most rows to return")]


def seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def build_json(build: Build, live_pools: set[str] | None = None) -> dict[str, Any]:
    """LIVE_POOLS: the pools with a live builder, when known: a queued build of another pool
    says why it waits."""
    waiting = None
    unserved = live_pools is not None and build.pool not in live_pools
    if build.status == BuildStatus.QUEUED and unserved:
        waiting = f"pool {build.pool} has no live builder; the build waits for one"
    return {
        "id": build.id,
        "status": build.status,
        "waiting": waiting,
        "commit": build.commit_sha,
        "stack": build.stack,
        "pool": build.pool,
        "builder": build.builder,
        "cache_warm": build.cache_warm,
        "error": build.error,
        "steps": build.steps,
        "created_at": build.created_at.isoformat(),
        "duration": seconds(build.started_at, build.finished_at),
        "logs_url": f"/api/v1/builds/{build.id}/logs",
    }


def deployment_json(
    request: Request,
    d: Deployment,
    app: str,
    env: str,
    version: int | None,
    organization: str | None,
) -> dict[str, Any]:
    """D as the API shows it; ORGANIZATION is the tenant's host label (see routes.apps.tenant)."""
    return {
        "id": d.id,
        "app": app,
        "environment": env,
        "status": d.status,
        "ref": d.ref,
        "commit": d.commit_sha,
        "author": d.author,
        "committed_at": d.committed_at.isoformat() if d.committed_at else None,
        "source": d.source,
        "actor": d.actor,
        "build_id": d.build_id,
        "release": version,
        "reason": d.reason,
        "url": app_url(request, app, env, organization),
        "workflow_id": d.workflow_id,
        "created_at": d.created_at.isoformat(),
        "duration": seconds(d.created_at, d.finished_at),
    }


@router.post("/apps/{app}/deployments", status_code=202, summary="Deploy an uploaded source tar")
async def create_deployment(
    app: str,
    request: Request,
    ref: str | None = Query(default=None, max_length=255),
    sha: str | None = Query(default=None, max_length=64),
    source: str = Query(default="upload", pattern="^(git|upload)$"),
    env: str | None = Query(default=None, max_length=40),
    principal: Principal = Depends(principal_from),
) -> JSONResponse:
    """The body is the source tree as a tar (or gzipped tar); the build log follows at logs_url."""
    ctx = context(request)
    principal.require(Role.DEPLOYER)
    with ctx.store.transaction() as session:
        apps.get(session, principal, app)
        organization = tenant(session, principal.organization_id)
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in ARCHIVE_TYPES:
        raise UnsupportedMedia(
            f"the body must be a tar archive ({', '.join(ARCHIVE_TYPES)}); got {kind or 'none'}"
        )
    upload = await launch.receive(request.stream(), ctx.settings.data_dir, ctx.settings.max_source)
    return await _launch(request, principal, app, upload, organization, ref, sha, source, env)


@router.post(
    "/apps/{app}/pushes", status_code=202, summary="Deploy a commit pushed to the app's repository"
)
async def deploy_push(
    app: str, body: Push, request: Request, principal: Principal = Depends(principal_from)
) -> JSONResponse:
    """What the git server's pre-receive hook calls for each pushed branch: the server archives
    the commit's tree from the app's repository itself (from the push's quarantined objects
    while it is received), so the tree is packed once. The build log follows at logs_url."""
    ctx = context(request)
    principal.require(Role.DEPLOYER)
    with ctx.store.transaction() as session:
        row = apps.get(session, principal, app)
        organization = tenant(session, principal.organization_id)
    repo = repos.repo_path(ctx.settings.data_dir, row.organization_id, app)
    # Archived and described side by side: two git processes, neither waiting for the other.
    upload, commit = await asyncio.gather(
        asyncio.to_thread(
            archive.pushed,
            repo,
            body.sha,
            launch.upload_path(ctx.settings.data_dir),
            ctx.settings.max_source,
            body.quarantine,
        ),
        asyncio.to_thread(commits.describe, repo, body.sha, body.quarantine),
    )
    return await _launch(
        request, principal, app, upload, organization, body.ref, body.sha, "git", commit=commit
    )


async def _launch(
    request: Request,
    principal: Principal,
    app: str,
    upload: Path,
    organization: str | None,
    ref: str | None,
    sha: str | None,
    source: str,
    env: str | None = None,
    commit: service.Commit | None = None,
) -> JSONResponse:
    """Start the deployment of UPLOAD (of COMMIT, when git described it); the answer says
    where to follow it."""
    ctx = context(request)
    launched = await launch.launch(
        ctx.store,
        ctx.temporal,
        principal,
        app,
        upload,
        ref=ref,
        sha=sha,
        source=source,
        environment=env,
        build_timeout=ctx.settings.build_timeout,
        rules=ctx.rules,
        js=ctx.nats.js if ctx.nats is not None else None,
        commit=commit,
    )
    body = {
        "id": launched.deployment_id,
        "build_id": launched.build_id,
        "app": launched.app,
        "environment": launched.environment,
        "status": launched.status,
        "url": app_url(request, launched.app, launched.environment, organization),
        "logs_url": f"/api/v1/builds/{launched.build_id}/logs",
    }
    return JSONResponse(body, status_code=202)


@router.get(
    "/deployments/{deployment_id}",
    response_model=DeploymentOut,
    summary="One deployment and its outcome",
)
async def get_deployment(
    deployment_id: Id,
    request: Request,
    principal: Principal = Depends(principal_from),
    wait: Annotated[
        int,
        Query(ge=0, le=600, description="seconds to wait for it to go live or end, if it has not"),
    ] = 0,
) -> dict[str, Any]:
    ctx = context(request)

    def read() -> dict[str, Any]:
        with ctx.store.transaction() as session:
            d = service.get_deployment(session, principal, deployment_id)
            env = session.get(Environment, d.environment_id)
            release = session.get(Release, d.release_id) if d.release_id else None
            assert env is not None
            version = release.version if release else None
            organization = tenant(session, env.app.organization_id)
            return deployment_json(request, d, env.app.name, env.name, version, organization)

    async def look() -> dict[str, Any] | None:
        shown = await asyncio.to_thread(read)
        return shown if settled(DeploymentStatus(shown["status"])) else None

    if wait:
        on = eventbus.subject("deployment", deployment_id)
        found = await eventbus.until(ctx.nats, on, look, wait)
        if found is not None:
            return found
    return await asyncio.to_thread(read)


@router.get(
    "/apps/{app}/deployments",
    response_model=list[DeploymentOut],
    summary="The app's deployments, newest first",
)
def list_deployments(
    app: str,
    request: Request,
    limit: Limit = 50,
    principal: Principal = Depends(principal_from),
) -> list[dict[str, Any]]:
    with context(request).store.transaction() as session:
        return deployments_json(request, session, apps.get(session, principal, app), limit)


def deployments_json(
    request: Request, session: Session, app: App, limit: int
) -> list[dict[str, Any]]:
    """APP's latest LIMIT deployments as the API shows them, newest first."""
    organization = tenant(session, app.organization_id)
    return [
        deployment_json(request, d, app.name, env, version, organization)
        for d, env, version in service.deployments_of(session, app, limit)
    ]


@router.get("/apps/{app}/builds", summary="The app's builds, newest first")
async def list_builds(
    app: str,
    request: Request,
    limit: Limit = 50,
    principal: Principal = Depends(principal_from),
) -> list[dict[str, Any]]:
    """A queued build whose pool has no live builder says so in `waiting`."""
    ctx = context(request)
    live = await _live_pools(ctx)

    def read() -> list[dict[str, Any]]:
        with ctx.store.transaction() as session:
            row = apps.get(session, principal, app)
            return [build_json(b, live) for b in service.builds_of(session, row, limit)]

    return await asyncio.to_thread(read)


@router.get("/builds/{build_id}", summary="One build")
async def get_build(
    build_id: Id, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, Any]:
    ctx = context(request)
    live = await _live_pools(ctx)

    def read() -> dict[str, Any]:
        with ctx.store.transaction() as session:
            return build_json(service.get_build(session, principal, build_id), live)

    return await asyncio.to_thread(read)


@router.post("/builds/{build_id}/cancel", status_code=202, summary="Cancel a build")
async def cancel_build(
    build_id: Id, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, Any]:
    """The builder running it sees within a heartbeat that it has ended and kills its
    sandbox; its deployment ends `cancelled`, as when a newer push supersedes it. 409 if the
    build has ended."""
    ctx = context(request)

    def cancel() -> dict[str, Any]:
        with ctx.store.transaction() as session:
            service.cancel_build(session, principal, build_id)
            return build_json(service.get_build(session, principal, build_id), None)

    return await asyncio.to_thread(cancel)


async def _live_pools(ctx: Context) -> set[str] | None:
    """The pools with a builder taking builds; None when the fleet cannot be read."""
    if ctx.nats is None:
        return None
    try:
        found = await registry.builders(ctx.nats.js)
    except Exception:  # NATS away: the builds are shown without the reason
        return None
    return {b.pool for b in found if b.state == BuilderState.ACTIVE}
