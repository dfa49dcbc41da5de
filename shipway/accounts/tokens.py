"""API tokens: minted once, stored as a sha256, checked on every request."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipway.accounts.names import check_label
from shipway.accounts.roles import Principal, Role
from shipway.errors import Forbidden, NotFound, Unauthorized, ValidationError
from shipway.events import Event, emit
from shipway.store.tables import ApiToken, Organization
from shipway.store.types import utcnow

TOKEN_PREFIX = "swt_"
MAX_TTL = timedelta(days=3650)
MAX_ID = 2**31 - 1  # ids are 32-bit integers on every backend


def hash_token(secret: str) -> str:
    """The stored form of a token; tokens are 256 random bits, so a plain sha256 suffices."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class MintedToken:
    """A freshly created token: the only moment its secret is known."""

    row: ApiToken
    secret: str


def parse_role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError:
        raise ValidationError(
            f"role must be one of owner, deployer, viewer; got {raw!r}", details={"field": "role"}
        ) from None


def mint(
    session: Session,
    organization_id: int,
    *,
    name: str,
    role: Role,
    user_id: int | None = None,
    expires_in: timedelta | None = None,
) -> MintedToken:
    """Create a token row and return it with its secret. Emits nothing: callers decide."""
    check_label(name, what="token name", limit=64)
    if expires_in is not None and not timedelta(seconds=1) <= expires_in <= MAX_TTL:
        raise ValidationError(
            "expires_in must be between 1 second and 3650 days", details={"field": "expires_in"}
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        organization_id=organization_id,
        user_id=user_id,
        name=name,
        role=role.value,
        token_hash=hash_token(secret),
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        created_at=utcnow(),
        expires_at=utcnow() + expires_in if expires_in else None,
    )
    session.add(row)
    session.flush()
    return MintedToken(row=row, secret=secret)


def create(
    session: Session,
    principal: Principal,
    *,
    name: str,
    role: Role,
    expires_in: timedelta | None = None,
) -> MintedToken:
    """Mint a token in the principal's tenant; nobody can hand out more power than they hold."""
    if not principal.role.allows(role):
        raise Forbidden(f"a {principal.role} token cannot create a {role} token")
    minted = mint(session, principal.organization_id, name=name, role=role, expires_in=expires_in)
    emit(
        session,
        Event(
            principal.organization_id,
            principal.actor,
            "token.create",
            f"token:{minted.row.id}",
            {"name": name, "role": role.value, "expires_at": _iso(minted.row)},
        ),
    )
    return minted


def _iso(row: ApiToken) -> str | None:
    return row.expires_at.isoformat() if row.expires_at else None


def authenticate(session: Session, secret: str) -> Principal:
    """The principal a bearer secret stands for; Unauthorized if unknown, expired or revoked."""
    return check(session, secret)[0]


def check(session: Session, secret: str) -> tuple[Principal, datetime | None]:
    """What `authenticate` answers, and when the token expires (None: never)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
        raise Unauthorized("invalid token")
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if row is None:
        raise Unauthorized("invalid token")
    now = utcnow()
    if row.revoked_at is not None:
        raise Unauthorized("token has been revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("token has expired")
    org = session.get(Organization, row.organization_id)
    assert org is not None
    principal = Principal(
        organization_id=row.organization_id,
        role=Role(row.role),
        actor=f"token:{row.id}",
        token_id=row.id,
        platform_admin=org.is_admin,
    )
    return principal, row.expires_at


def list_tokens(session: Session, principal: Principal) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.organization_id == principal.organization_id)
            .order_by(ApiToken.id)
        )
    )


def revoke(session: Session, principal: Principal, token_id: int) -> ApiToken:
    """Revoke a token of the principal's tenant; revoking twice is a no-op that records nothing."""
    row = session.get(ApiToken, token_id) if 0 < token_id <= MAX_ID else None
    if row is None or row.organization_id != principal.organization_id:
        raise NotFound(f"no token with id {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        emit(
            session,
            Event(
                principal.organization_id,
                principal.actor,
                "token.revoke",
                f"token:{row.id}",
                {"name": row.name},
            ),
        )
    return row


def login(session: Session, principal: Principal) -> None:
    """Record that PRINCIPAL's token starts being used (`shipway login`)."""
    subject = f"token:{principal.token_id}" if principal.token_id else principal.actor
    emit(session, Event(principal.organization_id, principal.actor, "login", subject))
