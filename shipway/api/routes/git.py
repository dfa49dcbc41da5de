"""/git/APP.git: git over smart HTTP for the real git client; the API token is the password.

Answers meant for a person are text/plain: git prints their body as `remote: …` lines.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from shipway.accounts import tokens
from shipway.accounts.roles import Principal, Role
from shipway.api.auth import context
from shipway.api.routing import Route
from shipway.apps import service as apps
from shipway.client.api import Api
from shipway.errors import NotFound, Unauthorized
from shipway.gitserver import backend, hook, repos
from shipway.native import NativeError
from shipway.store import Store

router = APIRouter(include_in_schema=False, route_class=Route)

UPLOAD_PACK = "git-upload-pack"
RECEIVE_PACK = "git-receive-pack"
MIB = 1024 * 1024
CHALLENGE = {"WWW-Authenticate": 'Basic realm="shipway"'}


@dataclass(frozen=True)
class Access:
    """Who pushes or fetches, and the app's repository they reach."""

    principal: Principal
    organization_id: int
    app_identity: str


@router.api_route("/git/{app}.git/{path:path}", methods=["GET", "POST"])
async def git_http(app: str, path: str, request: Request) -> Response:
    """info/refs, git-upload-pack and git-receive-pack, run by git's own http-backend."""
    ctx = context(request)
    service = _service(request.method, path, request.query_params.get("service"))
    if service is None:
        return _text(404, "shipway serves git over smart HTTP only")
    secret = _secret(request.headers.get("authorization", ""))
    if secret is None:
        return _text(401, "authentication required: use an API token as the password", CHALLENGE)
    try:
        access = await asyncio.to_thread(_authorize, ctx.store, secret, app)
    except Unauthorized as e:
        return _text(401, e.message, CHALLENGE)
    except NotFound:
        return _text(404, f"no app named '{app}'; create it with: shipway apps create {app}")
    pushing = service == RECEIVE_PACK
    if pushing and not access.principal.role.allows(Role.DEPLOYER):
        return _text(403, f"a {access.principal.role} token can fetch but not push")
    data_dir = ctx.settings.data_dir
    try:
        repo = await asyncio.to_thread(
            repos.ensure, data_dir, access.organization_id, app, access.app_identity
        )
    except NativeError as e:  # the hook cannot be built here: say what to install
        return _text(503, e.message)
    limit = await _push_limit(repo, ctx.settings.max_source) if pushing else None
    # Only a receive-pack POST runs the pre-receive hook.
    channel = (
        hook.Channel(Api(_loopback_url(request), secret), app)
        if pushing and request.method == "POST"
        else None
    )
    try:
        env = backend.environment(
            project_root=repo.parent,
            path_info=f"/{repo.name}/{path}",
            method=request.method,
            query=request.url.query,
            headers=request.headers,
            remote_addr=request.client.host if request.client else "",
            remote_user=access.principal.actor,
            max_input=limit.size if limit else None,
            extra=channel.env if channel else {},
        )
        answer = await backend.run(env, request.stream(), limit, channel.fds if channel else ())
    except ClientDisconnect:
        return Response(status_code=400)
    finally:
        if channel is not None:
            channel.close()
    return StreamingResponse(answer.body, status_code=answer.status, headers=dict(answer.headers))


def _service(method: str, path: str, wanted: str | None) -> str | None:
    """The git service a request is for; None for anything but smart HTTP."""
    if method == "GET" and path == "info/refs" and wanted in (UPLOAD_PACK, RECEIVE_PACK):
        return wanted
    if method == "POST" and path in (UPLOAD_PACK, RECEIVE_PACK):
        return path
    return None


def _secret(header: str) -> str | None:
    """The token: the password of HTTP Basic (any user name), or a bearer token."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def _authorize(store: Store, secret: str, app: str) -> Access:
    with store.transaction() as session:
        principal = tokens.authenticate(session, secret)
        row = apps.get(session, principal, app)
        return Access(principal, row.organization_id, repos.identity(row.id, row.created_at))


async def _push_limit(repo: Path, max_source: int) -> backend.Limit:
    """What this push may add: the repository as a whole stays within MAX_SOURCE."""
    held = await asyncio.to_thread(repos.size, repo)
    shown = f"{max_source / MIB:g} MiB limit"
    if held:
        what = f"this push would make the repository (now {held / MIB:.1f} MiB) larger than"
    else:
        what = "this push is larger than"
    return backend.Limit(
        size=max(max_source - held, 0),
        message=f"{what} the {shown} (SHIPWAY_MAX_SOURCE_MB)",
        reason=f"larger than the {shown}",
    )


def _loopback_url(request: Request) -> str:
    """This server as seen from this machine: the address the request itself arrived on."""
    server = request.scope.get("server")
    if not server or server[1] is None:
        return f"http://127.0.0.1:{context(request).settings.port}"
    host, port = server
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(message + "\n", status_code=status, media_type="text/plain", headers=headers)
