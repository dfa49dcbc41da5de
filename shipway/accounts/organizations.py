"""Tenants. The first one, made at first start, administers the platform."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipway.accounts import tokens
from shipway.accounts.names import check_dns_label
from shipway.accounts.roles import SYSTEM_ACTOR, Principal, Role
from shipway.errors import Conflict, Forbidden
from shipway.events import Event, emit
from shipway.store.tables import Organization, User

ADMIN_ORG = "default"
ADMIN_USER = "admin"


@dataclass(frozen=True)
class NewOrganization:
    organization: Organization
    owner_token: tokens.MintedToken


def _create(session: Session, name: str, *, actor: str, is_admin: bool) -> NewOrganization:
    check_dns_label(name, what="organization name", limit=40)
    if session.scalar(select(Organization).where(Organization.name == name)) is not None:
        raise Conflict(f"an organization named {name!r} already exists")
    org = Organization(name=name, is_admin=is_admin)
    session.add(org)
    try:
        session.flush()
    except IntegrityError as e:
        raise Conflict(f"an organization named {name!r} already exists") from e
    owner = User(organization_id=org.id, name=ADMIN_USER)
    session.add(owner)
    session.flush()
    minted = tokens.mint(session, org.id, name="owner", role=Role.OWNER, user_id=owner.id)
    emit(
        session,
        Event(org.id, actor, "organization.create", f"organization:{org.id}", {"name": name}),
    )
    emit(
        session,
        Event(
            org.id,
            actor,
            "token.create",
            f"token:{minted.row.id}",
            {"name": "owner", "role": "owner", "expires_at": None},
        ),
    )
    return NewOrganization(org, minted)


def create(session: Session, principal: Principal, name: str) -> NewOrganization:
    """A new tenant with an owner token; only the platform's own owners may do this."""
    if not (principal.platform_admin and principal.role is Role.OWNER):
        raise Forbidden("only an owner of the platform organization can create organizations")
    return _create(session, name, actor=principal.actor, is_admin=False)


def list_organizations(session: Session, principal: Principal) -> list[Organization]:
    if principal.platform_admin:
        return list(session.scalars(select(Organization).order_by(Organization.id)))
    org = session.get(Organization, principal.organization_id)
    return [org] if org else []


def admin_organization(session: Session) -> Organization | None:
    return session.scalar(select(Organization).where(Organization.is_admin.is_(True)))


def bootstrap(session: Session, existing_secret: str | None) -> str | None:
    """Make the platform organization and its admin token on first start.

    Returns a new admin secret to write out, or None when EXISTING_SECRET still works.
    """
    org = admin_organization(session)
    if org is None:
        return _create(session, ADMIN_ORG, actor=SYSTEM_ACTOR, is_admin=True).owner_token.secret
    if existing_secret:
        try:
            principal = tokens.authenticate(session, existing_secret)
        except Exception:
            principal = None
        if principal is not None and principal.organization_id == org.id:
            return None
    admin = session.scalar(
        select(User).where(User.organization_id == org.id, User.name == ADMIN_USER)
    )
    minted = tokens.mint(
        session, org.id, name="admin", role=Role.OWNER, user_id=admin.id if admin else None
    )
    emit(
        session,
        Event(
            org.id,
            SYSTEM_ACTOR,
            "token.create",
            f"token:{minted.row.id}",
            {"name": "admin", "role": "owner", "expires_at": None},
        ),
    )
    return minted.secret
