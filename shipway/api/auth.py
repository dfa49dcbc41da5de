"""Bearer-token authentication for every route but /healthz."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shipway.accounts import tokens
from shipway.accounts.roles import Principal
from shipway.errors import Unauthorized
from shipway.services import Services

bearer = HTTPBearer(auto_error=False, description="An API token: Authorization: Bearer swt_…")


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def principal_from(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    """The principal of the request's bearer token; Unauthorized if it is missing or bad."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token: send Authorization: Bearer TOKEN")
    store = services(request).store
    with store.transaction() as session:
        return tokens.authenticate(session, credentials.credentials)
