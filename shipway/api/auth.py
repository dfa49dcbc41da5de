"""Bearer-token authentication for every route but /healthz."""

from __future__ import annotations

import asyncio

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shipway.accounts.roles import Principal
from shipway.context import Context
from shipway.errors import Unauthorized

bearer = HTTPBearer(auto_error=False, description="An API token: Authorization: Bearer swt_…")


def context(request: Request) -> Context:
    found: Context = request.state.services
    return found


async def principal_from(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    """The principal of the request's bearer token; Unauthorized if it is missing or bad."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token: send Authorization: Bearer TOKEN")
    return await authenticate(context(request), credentials.credentials)


async def authenticate(ctx: Context, secret: str) -> Principal:
    """SECRET's principal: remembered from a moment ago, else read from the store."""
    known = ctx.tokens.cached(secret)
    if known is not None:
        return known
    return await asyncio.to_thread(ctx.tokens.authenticate, secret)
