"""/api/v1/tokens: create, list and revoke the tenant's API tokens (owners only)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from shipway.accounts import tokens
from shipway.accounts.roles import Principal, Role
from shipway.api.auth import context, principal_from
from shipway.api.routing import Route
from shipway.api.schemas import Id, TokenCreate, TokenCreated, TokenOut
from shipway.store.tables import Organization

router = APIRouter(prefix="/tokens", tags=["tokens"], route_class=Route)


@router.post("", status_code=201, response_model=TokenCreated, summary="Create a token")
def create_token(
    body: TokenCreate, request: Request, principal: Principal = Depends(principal_from)
) -> TokenCreated:
    principal.require(Role.OWNER)
    ttl = timedelta(seconds=body.expires_in) if body.expires_in is not None else None
    with context(request).store.transaction() as session:
        minted = tokens.create(
            session, principal, name=body.name, role=tokens.parse_role(body.role), expires_in=ttl
        )
        return TokenCreated(**TokenOut.of(minted.row).model_dump(), token=minted.secret)


@router.get("", response_model=list[TokenOut], summary="List the tenant's tokens")
def list_tokens(request: Request, principal: Principal = Depends(principal_from)) -> list[TokenOut]:
    principal.require(Role.OWNER)
    with context(request).store.transaction() as session:
        return [TokenOut.of(t) for t in tokens.list_tokens(session, principal)]


@router.delete("/{token_id}", response_model=TokenOut, summary="Revoke a token")
def revoke_token(
    token_id: Id, request: Request, principal: Principal = Depends(principal_from)
) -> TokenOut:
    principal.require(Role.OWNER)
    ctx = context(request)
    with ctx.store.transaction() as session:
        revoked = TokenOut.of(tokens.revoke(session, principal, token_id))
    ctx.tokens.forget()
    return revoked


whoami_router = APIRouter(tags=["tokens"], route_class=Route)


@whoami_router.get("/whoami", summary="The tenant, role and audit name of the calling token")
def whoami(request: Request, principal: Principal = Depends(principal_from)) -> dict[str, object]:
    with context(request).store.transaction() as session:
        return _who(session, principal)


@whoami_router.post("/login", summary="Start using a token: recorded as `login`; as /whoami")
def login(request: Request, principal: Principal = Depends(principal_from)) -> dict[str, object]:
    """What `shipway login` calls: the same answer as GET /whoami, and an audit entry."""
    with context(request).store.transaction() as session:
        tokens.login(session, principal)
        return _who(session, principal)


def _who(session: Session, principal: Principal) -> dict[str, object]:
    org = session.get(Organization, principal.organization_id)
    return {
        "organization": org.name if org else None,
        "role": principal.role.value,
        "actor": principal.actor,
    }
