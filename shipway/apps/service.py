"""Create, find, list and delete a tenant's apps. Every change emits one event."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from shipway.accounts.names import check_dns_label
from shipway.accounts.roles import Principal, Role
from shipway.errors import Conflict, NotFound, ValidationError
from shipway.events import Event, emit
from shipway.store.tables import App, Environment

PLANS = ("free", "pro")
PRODUCTION = "production"


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
    app = _find(session, principal.organization_id, name)
    if app is None:
        raise NotFound(f"no app named {name!r}", details={"name": name})
    return app


def list_apps(session: Session, principal: Principal) -> list[App]:
    query = (
        select(App)
        .where(App.organization_id == principal.organization_id)
        .options(selectinload(App.environments))
        .order_by(App.name)
    )
    return list(session.scalars(query))


def delete(session: Session, principal: Principal, name: str) -> None:
    """Delete the app and everything it owns; its audit entries stay."""
    principal.require(Role.OWNER)
    app = get(session, principal, name)
    session.delete(app)
    emit(
        session,
        Event(
            principal.organization_id, principal.actor, "app.delete", f"app:{name}", {"id": app.id}
        ),
    )


def update(
    session: Session,
    principal: Principal,
    name: str,
    *,
    plan: str | None = None,
    build_network: bool | None = None,
) -> App:
    """Change an app's settings; one event lists what changed."""
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
    if changes:
        emit(
            session,
            Event(principal.organization_id, principal.actor, "app.update", f"app:{name}", changes),
        )
    return app
