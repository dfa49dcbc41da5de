"""Add-ons of apps: create, list, destroy, back up and restore them, give previews their own,
and tell the runtime what an environment's sandboxes get from them.

An add-on's URL is the app's config var (DATABASE_URL, REDIS_URL), stored as a secret; the
add-on owns it, so `env set` and `env unset` refuse to touch it while it is attached.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipway.accounts.roles import Principal, Role
from shipway.addons.servers import Kind, Made, Servers, mount, suffix
from shipway.apps import config
from shipway.apps import service as apps
from shipway.apps.secretbox import SecretBox
from shipway.deploys import service as deploys
from shipway.errors import Conflict, NotFound, ValidationError
from shipway.events import Event, emit
from shipway.sandbox import Mount
from shipway.store import Store
from shipway.store.tables import Addon, App, Deployment, Environment

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}[a-z0-9]$")
_BACKUP = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
#: The actor of what shipway does on its own (a preview's add-ons).
SYSTEM = "shipway"


@dataclass(frozen=True)
class Created:
    addon: dict[str, Any]
    #: The deployment that rolls the new config var out; None when nothing is live yet.
    deployment: Deployment | None


def kind_of(value: str) -> Kind:
    try:
        return Kind(value)
    except ValueError:
        known = ", ".join(kind.value for kind in Kind)
        raise ValidationError(
            f"unknown add-on kind {value!r}; the kinds are: {known}", details={"kind": value}
        ) from None


def describe(addon: Addon, app: str, environment: str) -> dict[str, Any]:
    return {
        "name": addon.name,
        "kind": addon.kind,
        "app": app,
        "environment": environment,
        "env_var": addon.env_var,
        "fork": addon.fork,
        "created_at": addon.created_at.isoformat(),
    }


# -- create ------------------------------------------------------------------------------------


async def create(
    store: Store,
    servers: Servers,
    box: SecretBox,
    principal: Principal,
    app_name: str,
    kind_name: str,
    *,
    name: str | None = None,
    env_var: str | None = None,
    fork: bool = False,
) -> Created:
    """Make the add-on's database or server, attach it to the app's production and deploy the
    release with its URL. Nothing is left behind when any step fails."""
    kind = kind_of(kind_name)
    env_var = config.check_key(env_var or kind.env_var)
    name = _check_name(name or f"{app_name}-{kind.value}")
    await asyncio.to_thread(_check_new, store, principal, app_name, name, env_var)
    made = await servers.make(kind)
    try:
        return await asyncio.to_thread(
            _attach, store, box, principal, app_name, kind, name, env_var, fork, made
        )
    except BaseException:
        await servers.drop(kind, made.resource)
        raise
    finally:
        servers.pending.discard(made.resource)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(
            f"add-on name {name!r} must be 2 to 64 lowercase letters, digits and '-', "
            "starting with a letter",
            details={"name": name},
        )
    return name


def _check_new(store: Store, principal: Principal, app_name: str, name: str, env_var: str) -> None:
    with store.transaction() as session:
        principal.require(Role.DEPLOYER)
        app = apps.get(session, principal, app_name)
        _check_free(session, principal, app, name, env_var)


def _check_free(session: Session, principal: Principal, app: App, name: str, env_var: str) -> None:
    taken = session.scalar(
        select(Addon).where(Addon.organization_id == principal.organization_id, Addon.name == name)
    )
    if taken is not None:
        raise Conflict(
            f"an add-on named {name!r} exists already; choose another with --name",
            details={"name": name},
        )
    if any(var.key == env_var for var in config.list_vars(session, principal, app.name)):
        raise Conflict(
            f"{env_var} is set on {app.name} already: unset it first, or attach the add-on "
            "as another config var with --as",
            details={"env_var": env_var},
        )


def _attach(
    store: Store,
    box: SecretBox,
    principal: Principal,
    app_name: str,
    kind: Kind,
    name: str,
    env_var: str,
    fork: bool,
    made: Made,
) -> Created:
    with store.transaction() as session:
        app = apps.get(session, principal, app_name)
        _check_free(session, principal, app, name, env_var)
        production = deploys.production(session, app)
        addon = Addon(
            organization_id=principal.organization_id,
            app_id=app.id,
            environment_id=production.id,
            kind=kind.value,
            name=name,
            resource=made.resource,
            env_var=env_var,
            url=box.encrypt(made.url),
            fork=fork,
        )
        session.add(addon)
        config.attach(session, app.id, env_var, made.url, box)
        session.flush()
        _emit(session, principal, "addon.create", addon, app.name, production.name)
        deployment = _redeploy(session, principal, app, f"Attach {name} as {env_var}")
        return Created(describe(addon, app.name, production.name), deployment)


def _redeploy(
    session: Session, principal: Principal, app: App, description: str
) -> Deployment | None:
    """A release of the live code with the app's config as it now is, deployed."""
    snapshot = config.snapshot(session, app.id)
    return deploys.release_config(session, principal.actor, app, snapshot, description)


# -- read --------------------------------------------------------------------------------------


def listing(session: Session, principal: Principal, app_name: str | None) -> list[dict[str, Any]]:
    """The organization's add-ons (or one app's), previews' included."""
    principal.require(Role.VIEWER)
    query = (
        select(Addon, App.name, Environment.name)
        .join(App, App.id == Addon.app_id)
        .join(Environment, Environment.id == Addon.environment_id)
        .where(Addon.organization_id == principal.organization_id)
        .order_by(Addon.name)
    )
    if app_name is not None:
        query = query.where(Addon.app_id == apps.get(session, principal, app_name).id)
    return [describe(addon, app, env) for addon, app, env in session.execute(query).all()]


def get(session: Session, principal: Principal, name: str) -> tuple[Addon, App, Environment]:
    principal.require(Role.VIEWER)
    addon = session.scalar(
        select(Addon).where(Addon.organization_id == principal.organization_id, Addon.name == name)
    )
    if addon is None:
        raise NotFound(f"no add-on named {name!r}", details={"name": name})
    app = session.get(App, addon.app_id)
    env = session.get(Environment, addon.environment_id)
    assert app is not None and env is not None
    return addon, app, env


def info(session: Session, principal: Principal, name: str, servers: Servers) -> dict[str, Any]:
    addon, app, env = get(session, principal, name)
    described = describe(addon, app.name, env.name)
    described["server"] = servers.status_of(Kind(addon.kind), addon.resource)
    described["backups"] = backups(servers, addon)
    described["previews"] = sorted(
        session.scalars(
            select(Environment.name)
            .join(Addon, Addon.environment_id == Environment.id)
            .where(Addon.parent_id == addon.id)
        )
    )
    return described


# -- destroy -----------------------------------------------------------------------------------


async def destroy(
    store: Store,
    servers: Servers,
    box: SecretBox,
    principal: Principal,
    name: str,
    confirm: str | None,
) -> Deployment | None:
    """Detach and drop the add-on, with its previews' copies; CONFIRM must name its app."""

    def detach() -> tuple[list[tuple[Kind, str]], Deployment | None]:
        with store.transaction() as session:
            principal.require(Role.OWNER)
            addon, app, env = get(session, principal, name)
            if addon.parent_id is not None:
                raise ValidationError(
                    f"{name} is a preview's copy: it goes with the preview",
                    details={"name": name},
                )
            if confirm != app.name:
                raise ValidationError(
                    f"destroying {name} drops its data: confirm with --confirm {app.name}",
                    details={"name": name, "confirm": app.name},
                )
            copies = list(session.scalars(select(Addon).where(Addon.parent_id == addon.id)))
            dropped = [(Kind(a.kind), a.resource) for a in [addon, *copies]]
            config.detach(session, app.id, addon.env_var)
            _emit(session, principal, "addon.destroy", addon, app.name, env.name)
            for gone in [*copies, addon]:
                session.delete(gone)
            session.flush()
            deployment = _redeploy(session, principal, app, f"Detach {name} ({addon.env_var})")
            return dropped, deployment

    dropped, deployment = await asyncio.to_thread(detach)
    for kind, resource in dropped:
        await servers.drop(kind, resource)
    return deployment


# -- backups -----------------------------------------------------------------------------------


def _backup_dir(servers: Servers, addon: Addon) -> Path:
    return servers.data_dir / "backups" / addon.resource


def backups(servers: Servers, addon: Addon) -> list[dict[str, Any]]:
    """The add-on's backups, newest first: id, size in bytes, when made."""
    folder = _backup_dir(servers, addon)
    found = []
    for path in folder.glob(f"*{suffix(Kind(addon.kind))}") if folder.is_dir() else []:
        stat = path.stat()
        made = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat()
        found.append({"id": path.stem, "bytes": stat.st_size, "created_at": made})
    return sorted(found, key=lambda b: b["id"], reverse=True)


async def back_up(
    store: Store, servers: Servers, principal: Principal, name: str
) -> dict[str, Any]:
    """A new backup of the add-on's data in the data dir (pg_dump, or a Redis snapshot)."""
    addon = await asyncio.to_thread(_find, store, principal, name, Role.DEPLOYER)
    folder = _backup_dir(servers, addon)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stem = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kind = Kind(addon.kind)
    path, n = folder / f"{stem}{suffix(kind)}", 1
    while path.exists():
        path, n = folder / f"{stem}-{n}{suffix(kind)}", n + 1
    await servers.dump(kind, addon.resource, path)
    await asyncio.to_thread(_done, store, principal, name, "addon.backup", path.stem)
    stat = path.stat()
    return {"id": path.stem, "bytes": stat.st_size, "addon": name}


async def restore(
    store: Store, servers: Servers, principal: Principal, name: str, backup: str
) -> dict[str, Any]:
    """Replace the add-on's data with that of one of its backups."""
    addon = await asyncio.to_thread(_find, store, principal, name, Role.OWNER)
    kind = Kind(addon.kind)
    path = _backup_dir(servers, addon) / f"{backup}{suffix(kind)}"
    if not _BACKUP.fullmatch(backup) or not path.is_file():
        raise NotFound(
            f"{name} has no backup {backup!r}; list them with `shipway addons info {name}`",
            details={"name": name, "backup": backup},
        )
    await servers.restore(kind, addon.resource, path)
    await asyncio.to_thread(_done, store, principal, name, "addon.restore", backup)
    return {"addon": name, "backup": backup}


def _find(store: Store, principal: Principal, name: str, role: Role) -> Addon:
    with store.transaction() as session:
        principal.require(role)
        return get(session, principal, name)[0]


def _done(store: Store, principal: Principal, name: str, action: str, backup: str) -> None:
    """Record ACTION, done with BACKUP, in the activity log."""
    with store.transaction() as session:
        addon, app, env = get(session, principal, name)
        _emit(session, principal, action, addon, app.name, env.name, backup=backup)


# -- previews and the runtime ------------------------------------------------------------------


async def prepare(store: Store, servers: Servers, box: SecretBox, deployment_id: int) -> None:
    """Before a release runs: the servers of its environment's add-ons up, and in a preview a
    fresh copy of each of production's add-ons (or a fork of its data) it does not have yet."""

    def look() -> tuple[list[tuple[Kind, str]], list[tuple[Addon, Environment, str]]]:
        with store.transaction() as session:
            deployment = session.get(Deployment, deployment_id)
            if deployment is None:
                return [], []
            env = session.get(Environment, deployment.environment_id)
            app = session.get(App, deployment.app_id)
            assert env is not None and app is not None
            own = list(session.scalars(select(Addon).where(Addon.environment_id == env.id)))
            used = [(Kind(a.kind), a.resource) for a in own]
            if env.name == apps.PRODUCTION:
                return used, []
            have = {a.parent_id for a in own}
            production = deploys.production(session, app)
            parents = session.scalars(select(Addon).where(Addon.environment_id == production.id))
            return used, [(p, env, app.name) for p in parents if p.id not in have]

    used, missing = await asyncio.to_thread(look)
    await servers.ensure(used)
    for parent, env, app_name in missing:
        kind = Kind(parent.kind)
        made = await servers.make(kind)
        try:
            if parent.fork:
                await servers.copy(kind, parent.resource, made.resource)
            await asyncio.to_thread(_add_copy, store, box, parent, env, app_name, made)
        except BaseException:
            await servers.drop(kind, made.resource)
            raise
        finally:
            servers.pending.discard(made.resource)


def _add_copy(
    store: Store, box: SecretBox, parent: Addon, env: Environment, app_name: str, made: Made
) -> None:
    with store.transaction() as session:
        copy = Addon(
            organization_id=parent.organization_id,
            app_id=parent.app_id,
            environment_id=env.id,
            parent_id=parent.id,
            kind=parent.kind,
            name=f"{parent.name}--{env.name}"[:80],
            resource=made.resource,
            env_var=parent.env_var,
            url=box.encrypt(made.url),
            fork=parent.fork,
        )
        session.add(copy)
        session.flush()
        payload = {"forked_from": parent.name} if parent.fork else {}
        emit(
            session,
            Event(
                parent.organization_id,
                SYSTEM,
                "addon.create",
                f"app:{app_name}",
                {**describe(copy, app_name, env.name), **payload},
            ),
        )


@dataclass(frozen=True)
class Attached:
    """What an environment's sandboxes get from the app's add-ons."""

    env: dict[str, str]
    #: Config vars of production's add-ons that this environment must not see (a preview
    #: without its own copy yet never reaches production's data).
    hidden: frozenset[str]
    mounts: tuple[Mount, ...]
    secrets: tuple[str, ...]


def attached(
    session: Session, app_id: int, environment: str, box: SecretBox, data_dir: Path
) -> Attached:
    env_row = session.scalar(
        select(Environment).where(Environment.app_id == app_id, Environment.name == environment)
    )
    own = (
        list(session.scalars(select(Addon).where(Addon.environment_id == env_row.id)))
        if env_row is not None
        else []
    )
    everyone = set(
        session.scalars(
            select(Addon.env_var).where(Addon.app_id == app_id, Addon.parent_id.is_(None))
        )
    )
    urls = {addon.env_var: box.decrypt(addon.url) for addon in own}
    mounts = (mount(data_dir, Kind(a.kind), a.resource, urls[a.env_var]) for a in own)
    return Attached(
        env=urls,
        hidden=frozenset(everyone - set(urls)),
        mounts=tuple(mount for mount in mounts if mount is not None),
        secrets=tuple(urls.values()),
    )


async def keep(store: Store, servers: Servers) -> None:
    """Run the servers of every recorded add-on, and drop what no add-on names any more."""
    wanted = await asyncio.to_thread(resources, store)
    try:
        await servers.ensure(wanted)
    finally:
        dropped = await servers.sweep({resource for _, resource in wanted})
        if dropped:
            log.info("dropped add-on data no add-on names any more: %s", ", ".join(dropped))


def resources(store: Store) -> list[tuple[Kind, str]]:
    """Every add-on's (kind, resource), for the servers to run and keep."""
    with store.transaction() as session:
        rows = session.execute(select(Addon.kind, Addon.resource)).all()
    return [(Kind(kind), resource) for kind, resource in rows]


def _emit(
    session: Session,
    principal: Principal,
    action: str,
    addon: Addon,
    app: str,
    environment: str,
    **extra: str,
) -> None:
    payload = {**describe(addon, app, environment), **extra}
    emit(session, Event(principal.organization_id, principal.actor, action, f"app:{app}", payload))
