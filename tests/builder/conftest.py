"""Fixtures for the builder's records and activity: an owner with an app, builds queued in a
real store, and a control plane serving its real API over HTTP for a builder elsewhere."""

from __future__ import annotations

import io
import json
import socket
import tarfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from shipway.accounts.organizations import admin_organization
from shipway.accounts.roles import Principal, Role
from shipway.api.app import create_app
from shipway.apps import config
from shipway.apps import service as apps
from shipway.apps.secretbox import SecretBox
from shipway.builder.pipeline import BuildRequest, BuildResult, build
from shipway.context import Context
from shipway.deploys import service
from shipway.releases.layers import LayerStore
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import Organization


@dataclass(frozen=True)
class Pushed:
    """A build and its deployment, as a push queues them."""

    build_id: int
    deployment_id: int
    app_id: int


@pytest.fixture
def owner(store: Store) -> Principal:
    """The owner of the platform's organization, which has an app called web."""
    with store.transaction() as session:
        org = admin_organization(session)
        if org is None:
            org = Organization(name="acme", is_admin=True)
            session.add(org)
            session.flush()
        principal = Principal(org.id, Role.OWNER, "user:o", platform_admin=True)
        apps.create(session, principal, "web")
        return principal


def push(store: Store, owner: Principal, app: str = "web", branch: str = "main") -> Pushed:
    """Queue a build of APP's BRANCH, superseding the one still running there."""
    with store.transaction() as session:
        made = service.request(
            session, owner, app, ref=f"refs/heads/{branch}", sha=None, source="upload"
        )
        return Pushed(made.build.id, made.deployment.id, made.build.app_id)


def set_config(
    store: Store, owner: Principal, data_dir: Path, app: str, values: dict[str, str], secret: bool
) -> None:
    with store.transaction() as session:
        config.change(
            session, owner, app, values=values, secret=secret, box=SecretBox.load(data_dir)
        )


def tar_of(files: Mapping[str, str | bytes]) -> bytes:
    """An uncompressed tar holding FILES, as a push uploads a source."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode() if isinstance(text, str) else text
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def node_app(name: str, **package: object) -> dict[str, str]:
    """A Node app's package.json (with PACKAGE's fields, such as scripts) and a lockfile of no
    dependencies: `npm ci` installs it without a registry."""
    return {
        "package.json": json.dumps({"name": name, "version": "1.0.0", **package}),
        "package-lock.json": json.dumps(
            {
                "name": name,
                "version": "1.0.0",
                "lockfileVersion": 3,
                "requires": True,
                "packages": {"": {"name": name, "version": "1.0.0"}},
            }
        ),
    }


@dataclass(frozen=True)
class ControlPlane:
    url: str
    settings: Settings
    token: str


@pytest.fixture
def control_plane(store: Store, settings: Settings, admin_token: str) -> Iterator[ControlPlane]:
    """shipway's real API over the test's store, served over HTTP on a loopback port."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(Context(settings=settings, store=store, addresses={"nats": "nats://n:1"}))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started and thread.is_alive():
        started.wait(0.01)
    assert server.started, "the control plane did not start"
    try:
        yield ControlPlane(f"http://127.0.0.1:{sock.getsockname()[1]}", settings, admin_token)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@dataclass
class Log:
    """The build's log lines, each with whether it was private."""

    lines: list[tuple[str, bool]] = field(default_factory=list)

    async def __call__(self, line: str, *, private: bool = False) -> None:
        self.lines.append((line, private))

    @property
    def text(self) -> list[str]:
        return [line for line, _ in self.lines]


@dataclass
class Builder:
    data: Path
    work: Path
    builds: int = 0

    async def build(
        self,
        files: dict[str, str],
        log: Log | None = None,
        network: bool = False,
        app_id: int = 1,
        organization_id: int = 1,
    ) -> BuildResult:
        """Build FILES as the next build of app APP_ID, of ORGANIZATION_ID."""
        self.builds += 1
        archive = self.work / f"source-{self.builds}.tar"
        archive.write_bytes(tar_of(files))
        request = BuildRequest(
            build_id=self.builds,
            app_id=app_id,
            app=f"web{app_id}",
            source=archive,
            network=network,
            organization_id=organization_id,
        )
        return await build(request, self.data, log or Log())

    def layer(self, result: BuildResult, role: str) -> Path:
        [digest] = [ref.digest for ref in result.manifest.layers if ref.role == role]
        return LayerStore(self.data / "layers").path(digest)


@pytest.fixture
def builder(tmp_path: Path) -> Builder:
    (tmp_path / "data").mkdir()
    return Builder(tmp_path / "data", tmp_path)
