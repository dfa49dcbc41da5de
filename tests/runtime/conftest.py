"""A node as shipway runs one: real store, real sandboxes, the real router on a real port.

Releases are made here from a few files (a stdlib-only Python server, so no dependency
install is needed) and recorded in the store as a build would record them; the runtime then
starts and routes them exactly as the deploy workflow has it do, on uvloop's loop, as the
node runs them.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from shipway.accounts.roles import Principal, Role
from shipway.apps import config
from shipway.apps import service as apps
from shipway.apps.secretbox import SecretBox
from shipway.deploys import service as deploys
from shipway.deploys.lifecycle import DeploymentStatus
from shipway.releases.layers import LayerStore
from shipway.releases.manifest import LayerRef, Manifest
from shipway.router import Router, RouteTable, UnixUpstream
from shipway.runtime.agent import Runtime
from shipway.store import Store
from shipway.store.tables import App, Deployment, Organization, Release
from tests.helpers import migrated_store
from tests.helpers import on_the_nodes_loop as pytest_asyncio_loop_factories  # noqa: F401

#: A small threaded HTTP server that says who it is; /crash ends the process, /slow waits.
SERVER = r"""
import json, os, sys, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOOT = uuid.uuid4().hex  # pids repeat: every sandbox has its own PID namespace
print("booting", os.environ["SHIPWAY_PROCESS"], "key", os.environ.get("API_KEY"), flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/crash":
            print("crashing on request", flush=True)
            os._exit(3)
        if self.path.startswith("/slow"):
            time.sleep(float(self.path.rpartition("=")[2] or 0.3))
        if self.path.startswith("/read"):
            target = self.path.partition("?")[2]
            try:
                with open(target) as f:
                    answer = {"read": f.read(50)}
            except OSError as e:
                answer = {"error": type(e).__name__}
        elif self.path == "/write-app":
            try:
                open("/app/new-file", "w")
                answer = {"wrote": True}
            except OSError as e:
                answer = {"error": type(e).__name__}
        else:
            answer = {
                "release": os.environ.get("SHIPWAY_RELEASE"),
                "process": os.environ.get("SHIPWAY_PROCESS"),
                "uid": os.getuid(),
                "port": os.environ.get("PORT"),
                "greeting": os.environ.get("GREETING"),
                "secret": os.environ.get("API_KEY"),
                "boot": BOOT,
            }
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        size = len(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"received": size, "release": os.environ.get("SHIPWAY_RELEASE")})
        body = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""

WEB = {"server.py": SERVER, "Procfile": "web: python3 server.py\n"}


class Node:
    def __init__(self, store: Store, data: Path, runtime: Runtime, port: int) -> None:
        self.store = store
        self.data = data
        self.runtime = runtime
        self.port = port
        self.layers = LayerStore(data / "layers")
        self.box = SecretBox.load(data)
        with store.transaction() as session:
            org = Organization(name="acme", is_admin=True)
            session.add(org)
            session.flush()
            self.owner = Principal(org.id, Role.OWNER, "user:owner")

    def create_app(self, name: str, **settings: Any) -> int:
        with self.store.transaction() as session:
            app = apps.create(session, self.owner, name)
            for key, value in settings.items():
                setattr(app, key, value)
            session.flush()
            return app.id

    async def scale(self, app_id: int, formation: dict[str, int]) -> None:
        """Store FORMATION and run it, as the API's scale does."""
        with self.store.transaction() as session:
            app = session.get(App, app_id)
            assert app is not None
            app.formation = dict(formation)
        await self.runtime.scale(app_id, formation)

    def set_config(self, app: str, values: dict[str, str], secret: bool = False) -> None:
        with self.store.transaction() as session:
            config.change(session, self.owner, app, values=values, secret=secret, box=self.box)

    def release(self, app: str, files: dict[str, str], stack: str = "python") -> int:
        """Record a release of FILES as a build of APP would; returns its id."""
        tree = self.data / "tmp" / f"tree-{app}-{len(files)}-{id(files)}"
        tree.mkdir(parents=True)
        for name, text in files.items():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_text(text)
        digest = self.layers.add(tree)
        processes = {}
        if "Procfile" in files:
            for line in files["Procfile"].splitlines():
                kind, _, command = line.partition(":")
                processes[kind.strip()] = command.strip()
        manifest = Manifest(
            app=app,
            stack=stack,
            runtime="test",
            layers=(LayerRef(digest=digest, role="app", mount="/app"),),
            processes=processes,
            static_root="." if stack == "static" else None,
        )
        with self.store.transaction() as session:
            row = apps.get(session, self.owner, app)
            release = Release(
                app_id=row.id,
                version=deploys.next_release_version(session, row.id),
                digest=manifest.digest,
                manifest=manifest.to_json(),
                config=config.snapshot(session, row.id),
                description="test",
            )
            session.add(release)
            session.flush()
            return release.id

    def deployment(self, app: str, release_id: int, environment: str = "production") -> int:
        with self.store.transaction() as session:
            row = apps.get(session, self.owner, app)
            env = deploys._environment(session, row, environment, None)
            deployment = Deployment(
                app_id=row.id,
                environment_id=env.id,
                release_id=release_id,
                status=DeploymentStatus.DEPLOYING,
                source="upload",
            )
            session.add(deployment)
            session.flush()
            return deployment.id

    async def deploy(
        self,
        app: str,
        files: dict[str, str],
        environment: str = "production",
        stack: str = "python",
    ) -> int:
        """Start and route a release as the workflow does; marks the deployment live."""
        deployment = self.deployment(app, self.release(app, files, stack), environment)
        await self.runtime.launch(deployment)
        assert self.runtime.route(deployment)
        await asyncio.to_thread(self._live, deployment)
        return deployment

    def _live(self, deployment_id: int) -> None:
        with self.store.transaction() as session:
            row = session.get(Deployment, deployment_id)
            assert row is not None
            for previous in session.query(Deployment).filter(
                Deployment.environment_id == row.environment_id,
                Deployment.status == DeploymentStatus.LIVE.value,
            ):
                deploys.move_deployment(session, previous, DeploymentStatus.RETIRED)
            deploys.move_deployment(session, row, DeploymentStatus.LIVE)

    def url(self, host: str, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def get(self, host: str, path: str = "/", timeout: float = 10) -> httpx.Response:
        async with httpx.AsyncClient(timeout=timeout) as client:
            return await client.get(self.url(host, path), headers={"Host": host})

    def app_log(self, app: str) -> list[str]:
        return app_log(self.store, app)


def app_log(store: Store, app: str) -> list[str]:
    """The lines of APP's log stored so far, in order."""
    from sqlalchemy import select

    from shipway.store.tables import LogLine

    with store.transaction() as session:
        app_id = session.scalar(select(App.id).where(App.name == app))
        return list(
            session.scalars(
                select(LogLine.line)
                .where(LogLine.kind == "app", LogLine.owner_id == app_id)
                .order_by(LogLine.seq)
            )
        )


@pytest_asyncio.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    store = migrated_store(f"sqlite:///{tmp_path / 'shipway.db'}")
    table = RouteTable()
    runtime = Runtime(store, tmp_path, table, base_domain="localhost")
    control = f"\0shipway-test-control-{id(table)}"  # nothing listens: the API is not under test
    router = Router(table, UnixUpstream(control), "localhost")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    server = await router.serve(sock)
    try:
        yield Node(store, tmp_path, runtime, sock.getsockname()[1])
    finally:
        await runtime.close()
        server.close()
        router.close()
        store.close()
