"""The git route served by a real uvicorn beside a scripted fake of the deployments API, and
the real git client. The store is SQLite only: these tests are about git, not the store."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import tarfile
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from shipway.accounts import organizations, tokens
from shipway.accounts.organizations import bootstrap
from shipway.accounts.roles import Principal, Role
from shipway.api import errors
from shipway.api.app import UPLOADS, Served
from shipway.api.auth import principal_from
from shipway.api.limits import BodyLimit
from shipway.api.routes import git as git_routes
from shipway.apps import service as apps
from shipway.context import Context
from shipway.deploys import launch
from shipway.deploys.service import environment_name
from shipway.errors import TooLarge
from shipway.gitserver import archive, repos
from shipway.logs import sse
from shipway.settings import Settings
from shipway.store import Store
from tests.helpers import commit, git, migrated_store

#: How long the fake holds a build log open waiting for the test; only a safety net.
HOLD_SECONDS = 60


@dataclass
class Script:
    """What the fake deployments API answers for the next builds."""

    lines: list[str] = field(default_factory=lambda: ["step one", "step two", "step three"])
    end: str = "succeeded"
    status: str = "live"
    reason: str | None = None
    release: int | None = 3
    #: Stream this many lines, then wait until `go` is set before the rest.
    hold_after: int | None = None
    go: threading.Event = field(default_factory=threading.Event)
    released_in_time: bool | None = None
    environment_missing: bool = False


@dataclass
class Upload:
    app: str
    params: dict[str, str]
    tar: bytes

    def files(self) -> dict[str, bytes]:
        with tarfile.open(fileobj=io.BytesIO(self.tar)) as archive:
            return {
                m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
                for m in archive.getmembers()
                if m.isfile()
            }


class FakeDeployments:
    """POST deployments, the build log as SSE, the deployment, DELETE environment: scripted."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.script = Script()
        self.uploads: list[Upload] = []
        self.deleted: list[tuple[str, str]] = []
        self.polls = 0
        #: The `wait` each GET of a deployment asked for.
        self.waits: list[int] = []
        self.router = APIRouter(prefix="/api/v1")
        self.router.add_api_route(
            "/apps/{app}/deployments", self.create, methods=["POST"], status_code=202
        )
        self.router.add_api_route(
            "/apps/{app}/pushes", self.push, methods=["POST"], status_code=202
        )
        self.router.add_api_route("/builds/{build_id}/logs", self.logs, methods=["GET"])
        self.router.add_api_route("/deployments/{deployment_id}", self.get, methods=["GET"])
        self.router.add_api_route(
            "/apps/{app}/environments/{env}", self.delete_environment, methods=["DELETE"]
        )

    def reset(self) -> None:
        self.script = Script()
        self.uploads.clear()
        self.deleted.clear()
        self.polls = 0
        self.waits.clear()

    def _check_app(self, principal: Principal, app: str) -> None:
        with self.store.transaction() as session:
            apps.get(session, principal, app)

    async def create(
        self, app: str, request: Request, principal: Principal = Depends(principal_from)
    ) -> JSONResponse:
        principal.require(Role.DEPLOYER)
        self._check_app(principal, app)
        body = await request.body()
        if len(body) > self.settings.max_source:
            raise TooLarge("the source is larger than the limit")
        return self._started(Upload(app, dict(request.query_params), body))

    async def push(
        self, app: str, request: Request, principal: Principal = Depends(principal_from)
    ) -> JSONResponse:
        """As the real route: the commit's tree archived from the app's repository (from the
        push's quarantined objects), within the source limit."""
        principal.require(Role.DEPLOYER)
        self._check_app(principal, app)
        body = await request.json()
        repo = repos.repo_path(self.settings.data_dir, principal.organization_id, app)
        kept = await asyncio.to_thread(
            archive.pushed,
            repo,
            body["sha"],
            launch.upload_path(self.settings.data_dir),
            self.settings.max_source,
            body["quarantine"],
        )
        tar = kept.read_bytes()
        kept.unlink()
        params = {"source": "git", "ref": body["ref"], "sha": body["sha"]}
        return self._started(Upload(app, params, tar))

    def _started(self, upload: Upload) -> JSONResponse:
        self.uploads.append(upload)
        app, params = upload.app, upload.params
        env = params.get("env") or environment_name(params.get("ref"))[0]
        number = len(self.uploads)
        return JSONResponse(
            {
                "id": number,
                "build_id": 100 + number,
                "app": app,
                "environment": env,
                "status": "queued",
                "url": f"http://{app}.localhost:8080",
                "logs_url": f"/api/v1/builds/{100 + number}/logs",
            },
            status_code=202,
        )

    async def logs(
        self, build_id: int, principal: Principal = Depends(principal_from)
    ) -> StreamingResponse:
        script = self.script

        async def events() -> AsyncIterator[str]:
            yield sse.KEEP_ALIVE
            for seq, line in enumerate(script.lines, start=1):
                yield sse.encode("line", json.dumps({"seq": seq, "line": line}), id=seq)
                if seq == script.hold_after:
                    released = await asyncio.to_thread(script.go.wait, HOLD_SECONDS)
                    script.released_in_time = released
            yield sse.encode("end", json.dumps({"status": script.end}))

        return StreamingResponse(events(), media_type="text/event-stream")

    async def get(
        self, deployment_id: int, wait: int = 0, principal: Principal = Depends(principal_from)
    ) -> dict[str, Any]:
        self.polls += 1
        self.waits.append(wait)
        script = self.script
        upload = self.uploads[deployment_id - 1]
        live = script.status == "live"
        return {
            "id": deployment_id,
            # The first answer is still on its way, so the client has to poll.
            "status": "deploying" if self.polls == 1 and live else script.status,
            "environment": upload.params.get("env") or "production",
            "url": f"http://{upload.app}.localhost:8080",
            "build_id": 100 + deployment_id,
            "release": script.release if script.end == "succeeded" else None,
            "reason": script.reason,
        }

    async def delete_environment(
        self, app: str, env: str, principal: Principal = Depends(principal_from)
    ) -> Response:
        self._check_app(principal, app)
        self.deleted.append((app, env))
        if self.script.environment_missing:
            return JSONResponse(
                errors.error_body("not_found", f"no environment {env!r}"), status_code=404
            )
        return Response(status_code=204)


@dataclass
class Shipway:
    """The running server and the tenants and tokens tests use."""

    port: int
    store: Store
    settings: Settings
    fake: FakeDeployments
    owner: str
    viewer: str
    other_owner: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def remote(self, app: str, token: str | None = None) -> str:
        return f"http://shipway:{token or self.owner}@127.0.0.1:{self.port}/git/{app}.git"

    def create_app(self, name: str, token: str | None = None) -> str:
        with self.store.transaction() as session:
            principal = tokens.authenticate(session, token or self.owner)
            apps.create(session, principal, name)
        return name

    def repo_dir(self, name: str, token: str | None = None) -> Path:
        with self.store.transaction() as session:
            principal = tokens.authenticate(session, token or self.owner)
            org = principal.organization_id
        return self.settings.data_dir / "repos" / str(org) / f"{name}.git"


def _serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.01)
    return server, thread, port


@pytest.fixture(scope="module")
def shipway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shipway]:
    root = tmp_path_factory.mktemp("gitserver")
    store = migrated_store(f"sqlite:///{root / 'shipway.db'}")
    with store.transaction() as session:
        owner = bootstrap(session, None)
        assert owner is not None
        admin = tokens.authenticate(session, owner)
        viewer = tokens.mint(session, admin.organization_id, name="viewer", role=Role.VIEWER)
        other = organizations.create(session, admin, "other")
    settings = Settings.load({"data_dir": root / "data", "max_source_mb": 1}, env={})
    fake = FakeDeployments(store, settings)
    app = FastAPI()
    errors.install(app)
    app.include_router(fake.router)
    app.include_router(git_routes.router)
    services = Context(settings=settings, store=store)
    server, thread, port = _serve(Served(BodyLimit(app, exempt=UPLOADS), services))
    yield Shipway(port, store, settings, fake, owner, viewer.secret, other.owner_token.secret)
    server.should_exit = True
    thread.join(timeout=10)
    store.close()


@pytest.fixture
def ship(shipway: Shipway) -> Shipway:
    shipway.fake.reset()
    return shipway


def make_repo(path: Path, files: Mapping[str, str | bytes]) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    commit(path, files, "first")
    return path


def remote_refs(ship: Shipway, app: str) -> dict[str, str]:
    listed = git(Path("."), "ls-remote", ship.remote(app)).stdout
    return {ref: sha for sha, ref in (line.split("\t") for line in listed.splitlines())}
