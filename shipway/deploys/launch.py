"""Accept a source archive and start its DeployWorkflow: the control plane's side of a push."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

from nats.js import JetStreamContext
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from shipway.accounts.roles import Principal
from shipway.builder import appfile
from shipway.builder.messages import BuildInput
from shipway.deploys import service
from shipway.deploys.lifecycle import DeploymentStatus
from shipway.deploys.workflow import DeployInput, DeployWorkflow
from shipway.errors import ServiceError, TooLarge
from shipway.fleet import affinity, registry
from shipway.fleet.dispatch import Rules
from shipway.releases.manifest import Manifest
from shipway.store import Store
from shipway.store.tables import App, Deployment, Release
from shipway.workers import CONTROL_QUEUE

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_MAX_SOURCE = 200 * MIB


@dataclass(frozen=True)
class Launched:
    deployment_id: int
    build_id: int
    app: str
    environment: str
    status: str


def sources_dir(data_dir: Path) -> Path:
    path = data_dir / "sources"
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_path(data_dir: Path) -> Path:
    """Where a source not yet recorded for a build is written, in DATA/sources."""
    return sources_dir(data_dir) / f".upload-{uuid.uuid4().hex}"


async def receive(
    chunks: AsyncIterator[bytes], data_dir: Path, limit: int, what: str = "the source"
) -> Path:
    """Write an uploaded archive (WHAT it is, for the refusal) to DATA/sources, refusing it
    once it passes LIMIT bytes."""
    path = upload_path(data_dir)
    size = 0
    try:
        with open(path, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise TooLarge(
                        f"{what} is larger than the {limit // MIB} MiB limit",
                        details={"limit_bytes": limit},
                    )
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def launch(
    store: Store,
    client: Client | None,
    principal: Principal,
    app_name: str,
    upload: Path,
    *,
    ref: str | None,
    sha: str | None,
    source: str,
    environment: str | None,
    build_timeout: float,
    rules: Rules | None = None,
    js: JetStreamContext | None = None,
    commit: service.Commit | None = None,
) -> Launched:
    """Record the deployment (with its COMMIT's author and time, when git said them), then
    start its workflow, superseding the environment's last one. RULES pick the pool that
    builds it (none: pool default); the fleet in JS says whether the builder that last built
    the app is there to build it warm."""
    rules = rules or Rules()
    if client is None:
        upload.unlink(missing_ok=True)
        raise ServiceError("Temporal is not reachable; the deployment was not queued")
    try:
        needs = await asyncio.to_thread(appfile.needs_in, upload) if rules.use_needs else ()
        requested, app, last = await asyncio.to_thread(
            _record, store, principal, app_name, ref, sha, source, environment, rules, needs, commit
        )
    except BaseException:
        upload.unlink(missing_ok=True)
        raise
    archive = upload.with_name(f"{requested.build.id}.tar")
    os.replace(upload, archive)
    spec = DeployInput(
        deployment_id=requested.deployment.id,
        pool=requested.build.pool,
        affinity=await _warm_builder(js, last, requested.build.pool),
        build=BuildInput(
            build_id=requested.build.id,
            deployment_id=requested.deployment.id,
            app_id=app.id,
            app=app.name,
            source_path=str(archive),
            source_sha=sha,
            network=app.build_network,
            wall_seconds=build_timeout,
            organization_id=app.organization_id,
        ),
    )
    workflow_id = requested.deployment.workflow_id
    assert workflow_id is not None
    await start_workflow(store, client, spec, workflow_id)
    return Launched(
        deployment_id=requested.deployment.id,
        build_id=requested.build.id,
        app=app.name,
        environment=requested.environment.name,
        status=requested.deployment.status,
    )


async def start_workflow(
    store: Store, client: Client | None, spec: DeployInput, workflow_id: str
) -> None:
    """Start the deployment's workflow, ending the environment's earlier one; if it cannot be
    started the deployment fails, saying why. Where this process runs the control workers
    (`shipway up`), its first workflow task comes back with the answer (eager start) rather
    than through the task queue."""
    try:
        if client is None:
            raise ServiceError("Temporal is not reachable")
        await client.start_workflow(
            DeployWorkflow.run,
            spec,
            id=workflow_id,
            task_queue=CONTROL_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING,
            request_eager_start=True,
        )
    except Exception as e:
        await asyncio.to_thread(_fail, store, spec.deployment_id, f"cannot start: {e}")
        raise ServiceError(f"the deployment could not be started: {e}") from e


async def deploy_release(store: Store, client: Client | None, deployment: Deployment) -> None:
    """Start the workflow of a deployment of an existing release (rollback, config change)."""
    assert deployment.workflow_id is not None
    rollback = deployment.source == service.ROLLBACK
    phase = False if rollback else await asyncio.to_thread(_has_release_phase, store, deployment)
    spec = DeployInput(deployment.id, rollback=rollback, release_phase=phase)
    await start_workflow(store, client, spec, deployment.workflow_id)


def _has_release_phase(store: Store, deployment: Deployment) -> bool | None:
    """Whether the deployment's release has a `release:`, so that the workflow asks the node
    for a release phase only then; None (the node reads the release) if it has no release."""
    if deployment.release_id is None:
        return None
    with store.transaction() as session:
        release = session.get(Release, deployment.release_id)
        if release is None:
            return None
        return Manifest.from_json(release.manifest).release_command is not None


def _record(
    store: Store,
    principal: Principal,
    app_name: str,
    ref: str | None,
    sha: str | None,
    source: str,
    environment: str | None,
    rules: Rules,
    needs: Iterable[str],
    commit: service.Commit | None = None,
) -> tuple[service.Requested, App, str | None]:
    """The deployment requested, its app, and the builder that last built the app in its pool."""
    with store.transaction() as session:
        requested = service.request(
            session,
            principal,
            app_name,
            ref=ref,
            sha=sha,
            source=source,
            environment=environment,
            commit=commit,
        )
        app = session.get(App, requested.deployment.app_id)
        assert app is not None
        pool = rules.pool_for(app.plan, app.region, needs)[0]
        requested.build.pool = pool
        return requested, app, service.last_builder(session, app.id, pool)


async def _warm_builder(js: JetStreamContext | None, last: str | None, pool: str) -> str | None:
    """LAST, if it is an active builder of POOL; the fleet not answering means no affinity."""
    if js is None or last is None:
        return None
    try:
        async with asyncio.timeout(1.0):
            record = await registry.get(js, last)
    except Exception as e:  # NATS away: the build goes to the pool, as any cold one
        log.warning("fleet not reachable for cache affinity: %s", e)
        return None
    return affinity.warm_builder(last, pool, [record] if record else [], time.time())


def _fail(store: Store, deployment_id: int, reason: str) -> None:
    with store.transaction() as session:
        deployment = session.get(Deployment, deployment_id)
        if deployment is not None:
            service.move_deployment(session, deployment, DeploymentStatus.FAILED, reason)
