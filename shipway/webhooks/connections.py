"""Apps connected to a repository on a git host, and the webhook deliveries they receive.

A connection holds the webhook secret and, optionally, a host API token (to fetch private
sources and report commit statuses), both sealed with the installation's SecretBox.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipway.accounts.roles import Principal, Role
from shipway.apps import service as apps
from shipway.apps.secretbox import SecretBox
from shipway.errors import NotFound, ValidationError
from shipway.events import Event, emit
from shipway.store.tables import App, HookDelivery, RepoConnection
from shipway.store.types import utcnow
from shipway.webhooks import events, githost
from shipway.webhooks.events import HookEvent, Kind
from shipway.webhooks.lifecycle import DELIVERIES, DeliveryStatus
from shipway.webhooks.verify import Delivery, Provider

MAX_SECRET = 256
MAX_TOKEN = 4096
#: Deliveries `apps info` shows.
RECENT = 10


@dataclass(frozen=True)
class Connection:
    """A connection with its secret and token opened, for the work a delivery asks for."""

    app_id: int
    app: str
    organization_id: int
    provider: Provider
    repo: str
    api_url: str
    secret: str
    token: str | None


def actor(provider: str) -> str:
    """How the audit trail names what a host's deliveries do."""
    return f"webhook:{provider}"


def connect(
    session: Session,
    principal: Principal,
    box: SecretBox,
    app_name: str,
    *,
    provider: Provider,
    repo: str,
    secret: str,
    token: str | None,
    api_url: str | None,
) -> RepoConnection:
    """Connect APP_NAME to REPO on PROVIDER, replacing any earlier connection of it."""
    principal.require(Role.OWNER)
    app = apps.get(session, principal, app_name)
    repo = githost.check_repo(provider, repo)
    base = githost.api_base(provider, api_url)
    _check_text(secret, "secret", MAX_SECRET)
    if token is not None:
        _check_text(token, "token", MAX_TOKEN)
    connection = find(session, app.id) or RepoConnection(app_id=app.id)
    connection.provider = provider
    connection.repo = repo
    connection.api_url = base
    connection.secret = box.encrypt(secret)
    connection.token = box.encrypt(token) if token else None
    connection.updated_at = utcnow()
    session.add(connection)
    session.flush()
    emit(
        session,
        Event(
            app.organization_id,
            principal.actor,
            "app.connect",
            f"app:{app.name}",
            {"provider": str(provider), "repo": repo, "api_url": base, "token": bool(token)},
        ),
    )
    return connection


def disconnect(session: Session, principal: Principal, app_name: str) -> RepoConnection:
    """Forget APP_NAME's repository: later deliveries to it get 404."""
    principal.require(Role.OWNER)
    app = apps.get(session, principal, app_name)
    connection = find(session, app.id)
    if connection is None:
        raise NotFound(f"{app_name} is not connected to a repository", details={"app": app_name})
    session.delete(connection)
    emit(
        session,
        Event(
            app.organization_id,
            principal.actor,
            "app.disconnect",
            f"app:{app.name}",
            {"provider": connection.provider, "repo": connection.repo},
        ),
    )
    return connection


def of_app(session: Session, principal: Principal, app_name: str) -> RepoConnection | None:
    return find(session, apps.get(session, principal, app_name).id)


def candidates(session: Session, box: SecretBox, provider: Provider, app: str) -> list[Connection]:
    """The connections a delivery to /hooks/PROVIDER/APP may be for: apps of that name in any
    organization (names are unique per organization only; the secret tells them apart)."""
    rows = session.execute(
        select(RepoConnection, App)
        .join(App, App.id == RepoConnection.app_id)
        .where(App.name == app, RepoConnection.provider == str(provider))
        .order_by(RepoConnection.id)
    ).all()
    return [_open(box, connection, found) for connection, found in rows]


def opened(session: Session, box: SecretBox, app_id: int) -> Connection:
    connection = find(session, app_id)
    app = session.get(App, app_id)
    if connection is None or app is None:
        raise NotFound("the app is no longer connected to a repository")
    return _open(box, connection, app)


def record(
    session: Session, connection: Connection, delivery: Delivery, found: list[HookEvent]
) -> HookDelivery | None:
    """Record a verified delivery and what it asks for; None if its id was seen before."""
    acting = events.acted_on(found)
    first = acting[0] if acting else None
    row = HookDelivery(
        app_id=connection.app_id,
        provider=str(delivery.provider),
        delivery_id=delivery.id,
        event=delivery.event[:64] or "?",
        branch=first.branch if first else None,
        sha=first.sha if first else None,
        status=DeliveryStatus.ACCEPTED if acting else DeliveryStatus.IGNORED,
        detail=None if acting else describe(found),
        finished_at=None if acting else utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    emit(
        session,
        Event(
            connection.organization_id,
            actor(delivery.provider),
            "hook.delivery",
            f"app:{connection.app}",
            {
                "delivery": delivery.id,
                "event": delivery.event,
                "sha": row.sha,
                "branch": row.branch,
                "status": row.status,
                "detail": row.detail,
            },
        ),
    )
    return row


def describe(found: list[HookEvent]) -> str:
    """What a delivery that asks for nothing is: a ping, or the reasons it is ignored."""
    if found and all(e.kind is Kind.PING for e in found):
        return "ping: the webhook reaches shipway"
    reasons = [e.reason or "nothing to do" for e in found if e.kind is Kind.IGNORED]
    return "; ".join(dict.fromkeys(reasons)) or "nothing to do"


def move(
    session: Session,
    delivery_id: int,
    status: DeliveryStatus,
    detail: str | None = None,
    *,
    deployment_id: int | None = None,
) -> HookDelivery | None:
    """Move a delivery along its lifecycle; None if its app was deleted meanwhile."""
    row = session.get(HookDelivery, delivery_id)
    if row is None:
        return None
    if row.status != status:  # the same again is a retried step: nothing to check
        row.status = DELIVERIES.advance(DeliveryStatus(row.status), status)
    if detail is not None:
        row.detail = detail
    if deployment_id is not None:
        row.deployment_id = deployment_id
    if status in (DeliveryStatus.DONE, DeliveryStatus.FAILED):
        row.finished_at = utcnow()
    return row


def note_report(session: Session, delivery_id: int, reported: str) -> None:
    row = session.get(HookDelivery, delivery_id)
    if row is not None:
        row.reported = reported[:255]


def recent(session: Session, app_id: int, limit: int = RECENT) -> list[HookDelivery]:
    return list(
        session.scalars(
            select(HookDelivery)
            .where(HookDelivery.app_id == app_id)
            .order_by(HookDelivery.id.desc())
            .limit(limit)
        )
    )


def find(session: Session, app_id: int) -> RepoConnection | None:
    return session.scalar(select(RepoConnection).where(RepoConnection.app_id == app_id))


def _open(box: SecretBox, connection: RepoConnection, app: App) -> Connection:
    return Connection(
        app_id=app.id,
        app=app.name,
        organization_id=app.organization_id,
        provider=Provider(connection.provider),
        repo=connection.repo,
        api_url=connection.api_url,
        secret=box.decrypt(connection.secret),
        token=box.decrypt(connection.token) if connection.token else None,
    )


def _check_text(value: str, name: str, limit: int) -> None:
    if not value or len(value) > limit or not value.isprintable() or value != value.strip():
        raise ValidationError(
            f"the {name} must be 1-{limit} printable characters without surrounding spaces"
        )
