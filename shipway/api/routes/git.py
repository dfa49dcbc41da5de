"""/git/APP.git: smart HTTP for the real git client. The token is the Basic-auth password."""

from __future__ import annotations

import base64
import binascii
import os

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from shipway.accounts import tokens
from shipway.accounts.roles import Principal, Role
from shipway.api.auth import services
from shipway.apps import service as apps
from shipway.errors import Forbidden, NotFound, Unauthorized
from shipway.gitserver import cgi, repos

router = APIRouter(include_in_schema=False)

SERVICES = ("git-upload-pack", "git-receive-pack")
TRANSFER_FACTOR = 4
MIB = 1024 * 1024


def _challenge(message: str) -> Response:
    return Response(
        message + "\n",
        status_code=401,
        media_type="text/plain",
        headers={"WWW-Authenticate": 'Basic realm="shipway"'},
    )


def _pkt(text: str) -> bytes:
    data = text.encode()
    return f"{len(data) + 4:04x}".encode() + data


def _refusal(service: str, message: str) -> Response:
    """An answer git prints as `remote error: MESSAGE` instead of a bare HTTP status."""
    body = _pkt(f"# service={service}\n") + b"0000" + _pkt(f"ERR {message}")
    return Response(
        body,
        media_type=f"application/x-{service}-advertisement",
        headers={"Cache-Control": "no-cache"},
    )


def _secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
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


def _service(request: Request, path: str) -> str | None:
    if path == "info/refs":
        wanted = request.query_params.get("service")
        return wanted if wanted in SERVICES else None
    return path if path in SERVICES else None


@router.api_route("/git/{app}.git/{path:path}", methods=["GET", "POST"])
async def git_http(app: str, path: str, request: Request) -> Response:
    ctx = services(request)
    service = _service(request, path)
    if service is None:
        return Response(
            "only smart HTTP (git-upload-pack, git-receive-pack) is served\n",
            status_code=404,
            media_type="text/plain",
        )
    secret = _secret(request)
    if secret is None:
        return _challenge("authentication required: use an API token as the password")
    try:
        with ctx.store.transaction() as session:
            principal = tokens.authenticate(session, secret)
            row = apps.get(session, principal, app)
            org_id = row.organization_id
    except Unauthorized as e:
        return _challenge(e.message)
    except NotFound:
        return _refusal(service, f"no app named '{app}'; create it with: shipway apps create {app}")
    if service == "git-receive-pack":
        try:
            principal.require(Role.DEPLOYER)
        except Forbidden as e:
            return (
                _refusal(service, e.message)
                if path == "info/refs"
                else Response(e.message + "\n", status_code=403, media_type="text/plain")
            )
    repo = repos.ensure(repos.repo_path(ctx.settings.data_dir, org_id, app))
    # The source limit applies to the pushed tree, which the hook uploads to the deployments
    # API; the raw transfer only gets a looser cap, so a bad client cannot make us read forever.
    transfer_limit = TRANSFER_FACTOR * ctx.settings.max_source
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > transfer_limit:
        return Response(
            f"the push is larger than the {transfer_limit // MIB} MiB limit\n",
            status_code=413,
            media_type="text/plain",
        )
    env = _cgi_env(request, ctx.settings, repo, path, principal, secret, app)
    answer = await cgi.run(env, request.stream(), transfer_limit)
    return StreamingResponse(answer.body, status_code=answer.status, headers=dict(answer.headers))


def _cgi_env(
    request: Request,
    settings,
    repo,
    path: str,
    principal: Principal,  # type: ignore[no-untyped-def]
    secret: str,
    app: str,
) -> dict[str, str]:
    host = settings.host if settings.host not in ("0.0.0.0", "::") else "127.0.0.1"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "GIT_PROJECT_ROOT": str(repo.parent),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{repo.name}/{path}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.url.query,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "REMOTE_USER": principal.actor,
        "REMOTE_ADDR": request.client.host if request.client else "",
        "SHIPWAY_URL": f"http://{host}:{settings.port}",
        "SHIPWAY_TOKEN": secret,
        "SHIPWAY_APP": app,
    }
    if "content-length" in request.headers:
        env["CONTENT_LENGTH"] = request.headers["content-length"]
    if "content-encoding" in request.headers:
        env["HTTP_CONTENT_ENCODING"] = request.headers["content-encoding"]
    if "git-protocol" in request.headers:
        env["GIT_PROTOCOL"] = request.headers["git-protocol"]
    return env
