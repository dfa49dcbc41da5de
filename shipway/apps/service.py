"""Create, find, list and delete a tenant's apps. Every change emits one event."""

from __future__ import annotations

import re
from enum import Enum
from typing import Any, Final, Literal, TypeGuard

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from shipway.accounts.names import check_dns_label
from shipway.accounts.roles import Principal, Role
from shipway.errors import Conflict, NotFound, ValidationError
from shipway.events import Event, emit
from shipway.releases.manifest import RELEASE
from shipway.store.tables import App, Environment

PLANS = ("free", "pro")
PRODUCTION = "production"

#: Bounds of the app settings: seconds idle before sleeping, seconds to pass a health check.
IDLE_TIMEOUT = (10, 86_400)
HEALTH_TIMEOUT = (1, 600)
HEALTH_PATH_LIMIT = 255
#: Process types are Procfile names; each runs 0 to MAX_INSTANCES instances.
PROCESS = re.compile(r"[a-z][a-z0-9_-]{0,29}")
MAX_INSTANCES = 20
MAX_PROCESSES = 50

_ENVIRONMENT = re.compile(r"[a-z0-9-]{1,64}")
_HEALTH_PATH = re.compile(r"/[\x21-\x7e]*")


class Keep(Enum):
    """Leave a setting as it is: for settings where None means something (never sleep)."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


def check_app_name(name: object) -> str:
    return check_dns_label(name, what="app name", limit=40)


def create(
    session: Session, principal: Principal, name: str, *, plan: str = "free", region: str = "local"
) -> App:
    """A new app with its production environment."""
    principal.require(Role.DEPLOYER)
    check_app_name(name)
    if plan not in PLANS:
        raise ValidationError(
            f"plan must be one of {', '.join(PLANS)}; got {plan!r}", details={"field": "plan"}
        )
    check_dns_label(region, what="region", limit=32)
    if _find(session, principal.organization_id, name) is not None:
        raise Conflict(f"an app named {name!r} already exists", details={"name": name})
    app = App(organization_id=principal.organization_id, name=name, plan=plan, region=region)
    app.environments.append(Environment(name=PRODUCTION, kind=PRODUCTION))
    session.add(app)
    try:
        session.flush()
    except IntegrityError as e:
        raise Conflict(f"an app named {name!r} already exists", details={"name": name}) from e
    emit(
        session,
        Event(
            principal.organization_id,
            principal.actor,
            "app.create",
            f"app:{name}",
            {"plan": plan, "region": region},
        ),
    )
    return app


def _find(session: Session, organization_id: int, name: str) -> App | None:
    return session.scalar(
        select(App).where(App.organization_id == organization_id, App.name == name)
    )


def get(session: Session, principal: Principal, name: str) -> App:
    """The tenant's app called NAME; NotFound for any other tenant's, so none leaks."""
    app = _find(session, principal.organization_id, name) if _is_app_name(name) else None
    if app is None:
        raise NotFound(f"no app named {name!r}", details={"name": name})
    return app


def _is_app_name(name: str) -> bool:
    """Whether NAME could name an app; others (a NUL, 5000 characters) are not looked up."""
    try:
        check_app_name(name)
    except ValidationError:
        return False
    return True


def list_apps(session: Session, principal: Principal) -> list[App]:
    query = (
        select(App)
        .where(App.organization_id == principal.organization_id)
        .options(selectinload(App.environments))
        .order_by(App.name)
    )
    return list(session.scalars(query))


def delete(session: Session, principal: Principal, name: str) -> int:
    """Delete the app and everything it owns; its audit entries stay. Returns its id."""
    principal.require(Role.OWNER)
    app = get(session, principal, name)
    session.delete(app)
    emit(
        session,
        Event(
            principal.organization_id, principal.actor, "app.delete", f"app:{name}", {"id": app.id}
        ),
    )
    return app.id


def update(
    session: Session,
    principal: Principal,
    name: str,
    *,
    plan: str | None = None,
    build_network: bool | None = None,
    idle_timeout: int | Literal[Keep.KEEP] | None = KEEP,
    health_path: str | None = None,
    health_timeout: int | None = None,
) -> App:
    """Change an app's settings; one event lists what changed. IDLE_TIMEOUT None turns
    sleeping off."""
    principal.require(Role.DEPLOYER)
    app = get(session, principal, name)
    changes: dict[str, object] = {}
    if plan is not None and plan != app.plan:
        if plan not in PLANS:
            raise ValidationError(
                f"plan must be one of {', '.join(PLANS)}; got {plan!r}", details={"field": "plan"}
            )
        app.plan = changes["plan"] = plan
    if build_network is not None and build_network != app.build_network:
        app.build_network = changes["build_network"] = build_network
    if idle_timeout is not KEEP and idle_timeout != app.idle_timeout:
        app.idle_timeout = changes["idle_timeout"] = _check_idle_timeout(idle_timeout)
    if health_path is not None and health_path != app.health_path:
        app.health_path = changes["health_path"] = _check_health_path(health_path)
    if health_timeout is not None and health_timeout != app.health_timeout:
        app.health_timeout = changes["health_timeout"] = _check_health_timeout(health_timeout)
    if changes:
        emit(
            session,
            Event(principal.organization_id, principal.actor, "app.update", f"app:{name}", changes),
        )
    return app


def _within(value: object, bounds: tuple[int, int]) -> TypeGuard[int]:
    """Whether VALUE is a whole number (not a bool) within BOUNDS, both ends included."""
    low, high = bounds
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_idle_timeout(value: object) -> int | None:
    if value is None or _within(value, IDLE_TIMEOUT):
        return value
    low, high = IDLE_TIMEOUT
    raise ValidationError(
        f"idle_timeout must be {low}-{high} seconds, or null to never sleep; got {value!r}",
        details={"field": "idle_timeout", "value": value},
    )


def _check_health_timeout(value: object) -> int:
    if _within(value, HEALTH_TIMEOUT):
        return value
    low, high = HEALTH_TIMEOUT
    raise ValidationError(
        f"health_timeout must be {low}-{high} seconds; got {value!r}",
        details={"field": "health_timeout", "value": value},
    )


def _check_health_path(value: object) -> str:
    if (
        isinstance(value, str)
        and len(value) <= HEALTH_PATH_LIMIT
        and _HEALTH_PATH.fullmatch(value) is not None
    ):
        return value
    raise ValidationError(
        f"health_path must be a path starting with '/', of at most {HEALTH_PATH_LIMIT} printable "
        f"ASCII characters without spaces; got {value!r}",
        details={"field": "health_path", "value": value},
    )


def scale(session: Session, principal: Principal, name: str, counts: dict[str, Any]) -> App:
    """Set how many instances of each process type run; types not named keep their count."""
    principal.require(Role.DEPLOYER)
    app = get(session, principal, name)
    if not isinstance(counts, dict) or not counts:
        raise ValidationError(
            'name at least one process type and its count, e.g. {"web": 2}',
            details={"formation": counts},
        )
    for process, count in counts.items():
        if not isinstance(process, str) or PROCESS.fullmatch(process) is None:
            raise ValidationError(
                f"process type {process!r} must be 1-30 characters of a-z, 0-9, '_' and '-', "
                "starting with a letter",
                details={"process": process},
            )
        if process == RELEASE:
            raise ValidationError(
                f"{RELEASE!r} is the release phase, run once per release before its instances "
                "start, not a process type: it cannot be scaled",
                details={"process": process},
            )
        if not _within(count, (0, MAX_INSTANCES)):
            raise ValidationError(
                f"{process}: the count must be a whole number from 0 to {MAX_INSTANCES}; "
                f"got {count!r}",
                details={"process": process, "count": count},
            )
    formation = {**(app.formation or {}), **counts}
    if len(formation) > MAX_PROCESSES:
        raise ValidationError(f"an app has at most {MAX_PROCESSES} process types")
    app.formation = formation
    emit(
        session,
        Event(principal.organization_id, principal.actor, "scale", f"app:{name}", dict(counts)),
    )
    return app


def revert_scale(
    session: Session, principal: Principal, app: App, formation: dict[str, int]
) -> None:
    """Put back the formation of a scale whose new instances failed to start."""
    app.formation = formation
    emit(
        session,
        Event(
            principal.organization_id,
            principal.actor,
            "scale.reverted",
            f"app:{app.name}",
            dict(formation),
        ),
    )


def preview(session: Session, principal: Principal, name: str, environment: str) -> Environment:
    """The preview environment ENVIRONMENT of the app NAME; production is refused."""
    app = get(session, principal, name)
    found = (
        session.scalar(
            select(Environment).where(Environment.app_id == app.id, Environment.name == environment)
        )
        if _ENVIRONMENT.fullmatch(environment)
        else None
    )
    if found is None:
        raise NotFound(
            f"{name} has no environment named {environment!r}",
            details={"app": name, "environment": environment},
        )
    if found.kind == PRODUCTION:
        raise ValidationError(
            "production cannot be removed; delete the app", details={"environment": environment}
        )
    return found


def delete_environment(session: Session, principal: Principal, environment: Environment) -> None:
    """Delete a preview environment with its deployments and builds; its audit entries stay."""
    principal.require(Role.DEPLOYER)
    app = environment.app
    session.delete(environment)
    emit(
        session,
        Event(
            principal.organization_id,
            principal.actor,
            "environment.delete",
            f"app:{app.name}",
            {"environment": environment.name, "branch": environment.branch},
        ),
    )
