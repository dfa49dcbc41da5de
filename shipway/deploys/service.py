"""Deployments and builds in the store: requested by a push or an upload, moved along their
lifecycles in one place each, superseded by a newer push to the same environment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipway.accounts.roles import SYSTEM_ACTOR, Principal, Role
from shipway.apps import service as apps
from shipway.apps.service import PRODUCTION
from shipway.deploys.lifecycle import BUILDS, DEPLOYMENTS, BuildStatus, DeploymentStatus
from shipway.errors import Conflict, NotFound, ValidationError
from shipway.events import Event, emit
from shipway.store.tables import App, Build, Deployment, Environment, Organization, Release
from shipway.store.types import utcnow

DEFAULT_BRANCHES = ("main", "master")
#: The source of a rollback's deployment (a push's is git or upload, a config change's config).
ROLLBACK = "rollback"
ACTIVE = (DeploymentStatus.QUEUED, DeploymentStatus.BUILDING, DeploymentStatus.DEPLOYING)
_SHA = re.compile(r"^[0-9a-f]{7,64}$")
_NOT_LABEL = re.compile(r"[^a-z0-9]+")


def environment_name(ref: str | None) -> tuple[str, str | None]:
    """The environment a ref deploys to: production for main/master, else a preview per branch."""
    branch = ref.removeprefix("refs/heads/") if ref else None
    if branch is None or branch in DEFAULT_BRANCHES:
        return PRODUCTION, branch
    name = _NOT_LABEL.sub("-", branch.lower()).strip("-")[:40].strip("-")
    if not name:
        raise ValidationError(f"branch {branch!r} has no letters or digits to name a preview")
    return name, branch


def workflow_id(org: Organization, app: App, environment: str) -> str:
    """deploy/APP/ENV, with the organization in front for tenants other than the platform's."""
    if org.is_admin:
        return f"deploy/{app.name}/{environment}"
    return f"deploy/{org.name}/{app.name}/{environment}"


@dataclass(frozen=True)
class Commit:
    """What git says of a deployed commit: its author ("Name <email>") and when it was
    committed, from which the delivery metrics count a change's lead time."""

    author: str | None
    committed_at: datetime | None


@dataclass(frozen=True)
class Requested:
    deployment: Deployment
    build: Build
    environment: Environment
    superseded: list[int]


def request(
    session: Session,
    principal: Principal,
    app_name: str,
    *,
    ref: str | None,
    sha: str | None,
    source: str,
    environment: str | None = None,
    commit: Commit | None = None,
) -> Requested:
    """Queue a build and deployment of SHA (whose COMMIT git described, when it did); any
    still-running one of that environment is superseded in the same transaction."""
    principal.require(Role.DEPLOYER)
    app = apps.get(session, principal, app_name)
    if sha is not None and not _SHA.match(sha):
        raise ValidationError("sha must be 7-64 lowercase hex digits", details={"sha": sha})
    if source not in ("git", "upload"):
        raise ValidationError("source must be git or upload", details={"source": source})
    env_name, branch = environment_name(ref)
    if environment:
        env_name = apps.check_app_name(environment) if environment != PRODUCTION else PRODUCTION
    env = _environment(session, app, env_name, branch)
    superseded = supersede(session, principal.actor, env)
    org = session.get(Organization, app.organization_id)
    assert org is not None
    build = Build(app_id=app.id, environment_id=env.id, commit_sha=sha, status=BuildStatus.QUEUED)
    session.add(build)
    session.flush()
    deployment = Deployment(
        app_id=app.id,
        environment_id=env.id,
        build_id=build.id,
        status=DeploymentStatus.QUEUED,
        ref=ref,
        commit_sha=sha,
        author=commit.author if commit else None,
        committed_at=commit.committed_at if commit else None,
        source=source,
        actor=principal.actor,
        workflow_id=workflow_id(org, app, env.name),
    )
    session.add(deployment)
    session.flush()
    emit(
        session,
        Event(
            app.organization_id,
            principal.actor,
            "push" if source == "git" else "deploy.upload",
            f"app:{app.name}",
            {
                "ref": ref,
                "sha": sha,
                "environment": env.name,
                "deployment": deployment.id,
                "build": build.id,
            },
        ),
    )
    return Requested(deployment, build, env, superseded)


def _environment(session: Session, app: App, name: str, branch: str | None) -> Environment:
    env = session.scalar(
        select(Environment).where(Environment.app_id == app.id, Environment.name == name)
    )
    if env is None:
        env = Environment(
            app_id=app.id,
            name=name,
            kind=PRODUCTION if name == PRODUCTION else "preview",
            branch=branch,
        )
        session.add(env)
        session.flush()
    return env


def supersede(session: Session, actor: str, env: Environment) -> list[int]:
    """Mark every active deployment of ENV (and its build) superseded; return their ids."""
    rows = session.scalars(
        select(Deployment).where(
            Deployment.environment_id == env.id, Deployment.status.in_([s.value for s in ACTIVE])
        )
    ).all()
    for deployment in rows:
        move_deployment(
            session, deployment, DeploymentStatus.SUPERSEDED, "a newer push", actor=actor
        )
    return [d.id for d in rows]


def move_build(
    session: Session, build: Build, target: BuildStatus, *, error: str | None = None
) -> bool:
    """The one place a build changes status. False (and nothing written) if it already ended."""
    current = BuildStatus(build.status)
    if BUILDS.is_terminal(current):
        return False
    build.status = BUILDS.advance(current, target)
    now = utcnow()
    payload: dict[str, Any]
    if target is BuildStatus.BUILDING:
        build.started_at = now
        action, payload = "build.start", {"builder": build.builder}
    else:
        build.finished_at = now
        build.error = error
        action, payload = (
            "build.end",
            {"status": target.value, "error": error, "cache_warm": build.cache_warm, **_ran(build)},
        )
    app = session.get(App, build.app_id)
    assert app is not None
    emit(
        session,
        Event(
            app.organization_id,
            SYSTEM_ACTOR,
            action,
            f"build:{build.id}",
            {"app": app.name, **payload},
        ),
    )
    return True


def _ran(build: Build) -> dict[str, Any]:
    """Where and how long an ending build ran, and how long it waited to start: what the audit
    entry tells and the metrics count (shipway.metrics)."""
    started, ended = build.started_at, build.finished_at
    return {
        "stack": build.stack,
        "pool": build.pool,
        "seconds": round((ended - started).total_seconds(), 3) if started and ended else None,
        "waited": round((started - build.created_at).total_seconds(), 3) if started else None,
    }


def move_deployment(
    session: Session,
    deployment: Deployment,
    target: DeploymentStatus,
    reason: str | None = None,
    *,
    actor: str = SYSTEM_ACTOR,
) -> bool:
    """The one place a deployment changes status; its build follows when the deployment stops.

    Returns False, writing nothing, when the deployment already ended (e.g. it was superseded
    while its build was finishing)."""
    current = DeploymentStatus(deployment.status)
    if DEPLOYMENTS.is_terminal(current):
        return False
    deployment.status = DEPLOYMENTS.advance(current, target)
    deployment.updated_at = utcnow()
    if reason is not None:
        deployment.reason = reason
    if target in (DeploymentStatus.FAILED, DeploymentStatus.CANCELLED, DeploymentStatus.SUPERSEDED):
        deployment.finished_at = deployment.updated_at
        build = session.get(Build, deployment.build_id) if deployment.build_id else None
        if build is not None:
            move_build(session, build, BuildStatus(target.value), error=reason)
    if target is DeploymentStatus.LIVE:
        deployment.finished_at = deployment.updated_at
    app = session.get(App, deployment.app_id)
    assert app is not None
    emit(
        session,
        Event(
            app.organization_id,
            actor,
            f"deployment.{target.value}",
            f"deployment:{deployment.id}",
            {
                "app": app.name,
                "reason": reason,
                "release": deployment.release_id,
                "source": deployment.source,
            },
        ),
    )
    return True


def cancel_build(session: Session, principal: Principal, build_id: int) -> Deployment:
    """Cancel the build and its deployment. Its builder sees the build has ended within a
    heartbeat and kills its sandbox. Conflict if it ended already."""
    principal.require(Role.DEPLOYER)
    build = get_build(session, principal, build_id)
    deployment = session.scalar(select(Deployment).where(Deployment.build_id == build.id))
    if deployment is None or not move_deployment(
        session, deployment, DeploymentStatus.CANCELLED, "cancelled", actor=principal.actor
    ):
        raise Conflict(f"build {build_id} has ended already ({build.status})")
    return deployment


def last_builder(session: Session, app_id: int, pool: str) -> str | None:
    """The builder of POOL that last built APP_ID successfully: where its cache is warm."""
    return session.scalar(
        select(Build.builder)
        .where(
            Build.app_id == app_id,
            Build.pool == pool,
            Build.status == BuildStatus.SUCCEEDED.value,
            Build.builder.is_not(None),
        )
        .order_by(Build.id.desc())
        .limit(1)
    )


def next_release_version(session: Session, app_id: int) -> int:
    current = session.scalar(select(func.max(Release.version)).where(Release.app_id == app_id))
    return int(current or 0) + 1


def get_deployment(session: Session, principal: Principal, deployment_id: int) -> Deployment:
    deployment = session.get(Deployment, deployment_id) if 0 < deployment_id < 2**31 else None
    if deployment is None or _org_of(session, deployment.app_id) != principal.organization_id:
        raise NotFound(f"no deployment with id {deployment_id}")
    return deployment


def get_build(session: Session, principal: Principal, build_id: int) -> Build:
    build = session.get(Build, build_id) if 0 < build_id < 2**31 else None
    if build is None or _org_of(session, build.app_id) != principal.organization_id:
        raise NotFound(f"no build with id {build_id}")
    return build


def deployments_of(
    session: Session, app: App, limit: int
) -> list[tuple[Deployment, str, int | None]]:
    """APP's latest LIMIT deployments, newest first, each with its environment's name and its
    release's version (None before it has one)."""
    rows = session.execute(
        select(Deployment, Environment.name, Release.version)
        .join(Environment, Environment.id == Deployment.environment_id)
        .outerjoin(Release, Release.id == Deployment.release_id)
        .where(Deployment.app_id == app.id)
        .order_by(Deployment.id.desc())
        .limit(limit)
    ).all()
    return [(d, env, version) for d, env, version in rows]


def builds_of(session: Session, app: App, limit: int) -> list[Build]:
    """APP's latest LIMIT builds, newest first."""
    found = select(Build).where(Build.app_id == app.id).order_by(Build.id.desc()).limit(limit)
    return list(session.scalars(found))


def releases_of(session: Session, app: App, limit: int) -> list[tuple[Release, Build | None]]:
    """APP's latest LIMIT releases, newest first, each with the build that made it (None for a
    rollback's or a config change's copy)."""
    releases = session.scalars(
        select(Release)
        .where(Release.app_id == app.id)
        .order_by(Release.version.desc())
        .limit(limit)
    ).all()
    made_by = [r.build_id for r in releases if r.build_id]
    builds = {b.id: b for b in session.scalars(select(Build).where(Build.id.in_(made_by)))}
    return [(r, builds.get(r.build_id) if r.build_id else None) for r in releases]


def _org_of(session: Session, app_id: int) -> int | None:
    return session.scalar(select(App.organization_id).where(App.id == app_id))


def current_release(session: Session, env: Environment) -> Release | None:
    """The release the environment's live deployment runs, if one is live."""
    return session.scalar(
        select(Release)
        .join(Deployment, Deployment.release_id == Release.id)
        .where(
            Deployment.environment_id == env.id,
            Deployment.status == DeploymentStatus.LIVE.value,
        )
        .order_by(Deployment.id.desc())
        .limit(1)
    )


def production(session: Session, app: App) -> Environment:
    env = session.scalar(
        select(Environment).where(Environment.app_id == app.id, Environment.name == PRODUCTION)
    )
    assert env is not None, "every app has a production environment"
    return env


def rollback(
    session: Session, principal: Principal, app_name: str, to: int | None = None
) -> Deployment:
    """Deploy an earlier release of production again, code and config as they were: version TO,
    or the one before the live one. It becomes a new release, so history only grows."""
    principal.require(Role.DEPLOYER)
    app = apps.get(session, principal, app_name)
    env = production(session, app)
    live = current_release(session, env)
    if to is None:
        if live is None:
            raise ValidationError(f"{app.name} has no live release to roll back from")
        # The last one that went live before it (a release that failed to start never did).
        target = session.scalar(
            select(Release)
            .join(Deployment, Deployment.release_id == Release.id)
            .where(
                Deployment.environment_id == env.id,
                Deployment.status == DeploymentStatus.RETIRED.value,
                Release.version < live.version,
            )
            .order_by(Release.version.desc())
            .limit(1)
        )
        if target is None:
            raise ValidationError(
                f"{app.name} has no earlier release that went live; name one with --to"
            )
    else:
        target = session.scalar(
            select(Release).where(Release.app_id == app.id, Release.version == to)
        )
        if target is None:
            raise NotFound(f"{app.name} has no release v{to}", details={"release": to})
    release = _copy(session, app, target, target.config, f"Rollback to v{target.version}")
    deployment = _deploy(session, principal.actor, app, env, release, ROLLBACK)
    emit(
        session,
        Event(
            app.organization_id,
            principal.actor,
            "rollback",
            f"app:{app.name}",
            {"to": target.version, "release": release.version, "deployment": deployment.id},
        ),
    )
    return deployment


def release_config(
    session: Session, actor: str, app: App, snapshot: dict[str, Any], description: str
) -> Deployment | None:
    """After a config change: a new release of the live production code with SNAPSHOT, and its
    deployment; None when nothing is live yet (the next push takes the new config)."""
    env = production(session, app)
    live = current_release(session, env)
    if live is None:
        return None
    release = _copy(session, app, live, snapshot, description)
    return _deploy(session, actor, app, env, release, "config")


def _copy(
    session: Session, app: App, source: Release, snapshot: dict[str, Any], description: str
) -> Release:
    release = Release(
        app_id=app.id,
        build_id=source.build_id,
        version=next_release_version(session, app.id),
        digest=source.digest,
        manifest=source.manifest,
        config=snapshot,
        description=description[:255],
    )
    session.add(release)
    session.flush()
    return release


def _deploy(
    session: Session, actor: str, app: App, env: Environment, release: Release, source: str
) -> Deployment:
    """A deployment of an existing release, superseding whatever is under way in ENV. It
    names the commit its release's build was made from, as that build's deployment did."""
    supersede(session, actor, env)
    org = session.get(Organization, app.organization_id)
    assert org is not None
    built = _built_by(session, app, release.build_id)
    deployment = Deployment(
        app_id=app.id,
        environment_id=env.id,
        release_id=release.id,
        status=DeploymentStatus.QUEUED,
        commit_sha=built.commit_sha if built else None,
        author=built.author if built else None,
        committed_at=built.committed_at if built else None,
        source=source,
        actor=actor,
        workflow_id=workflow_id(org, app, env.name),
    )
    session.add(deployment)
    session.flush()
    return deployment


def _built_by(session: Session, app: App, build_id: int | None) -> Deployment | None:
    """The deployment of APP that asked for build BUILD_ID (None for no build, or once the
    build is deleted)."""
    if build_id is None:
        return None
    return session.scalar(
        select(Deployment)
        .where(Deployment.app_id == app.id, Deployment.build_id == build_id)
        .order_by(Deployment.id)
        .limit(1)
    )
