"""Fixtures for the app routes: an API whose Temporal and runtime are stand-ins that record what
they are asked, and releases made straight in the store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shipway.api.app import create_app
from shipway.context import Context
from shipway.deploys.lifecycle import DeploymentStatus
from shipway.releases.manifest import Manifest
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import App, Deployment, Environment, Release


@dataclass
class FakeTemporal:
    """Records the workflows it is asked to start; starts none."""

    started: list[str] = field(default_factory=list)

    async def start_workflow(self, *args: Any, id: str, **kwargs: Any) -> None:
        self.started.append(id)


@dataclass
class FakeRuntime:
    """Records scale and remove calls; describes what a test tells it to."""

    scaled: list[tuple[int, dict[str, int]]] = field(default_factory=list)
    removed: list[tuple[int, str | None]] = field(default_factory=list)
    running: list[dict[str, Any]] = field(default_factory=list)
    #: Raised by scale, as when the new instances do not start.
    scale_fails: Exception | None = None

    async def scale(self, app_id: int, formation: dict[str, int]) -> None:
        self.scaled.append((app_id, formation))
        if self.scale_fails is not None:
            raise self.scale_fails

    async def remove(self, app_id: int, environment: str | None = None) -> list[str]:
        self.removed.append((app_id, environment))
        return []

    async def describe(self, app_id: int) -> list[dict[str, Any]]:
        return self.running


@dataclass
class Node:
    """A test API wired to stand-ins for Temporal and the runtime."""

    client: TestClient
    temporal: FakeTemporal
    runtime: FakeRuntime


@pytest.fixture
def node(store: Store, settings: Settings, admin_token: str) -> Iterator[Node]:
    temporal, runtime = FakeTemporal(), FakeRuntime()
    services = Context(settings, store, temporal=temporal, runtime=runtime)  # type: ignore[arg-type]
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {admin_token}"
        assert client.post("/api/v1/apps", json={"name": "web"}).status_code == 201
        yield Node(client, temporal, runtime)


def app_id(store: Store, name: str = "web") -> int:
    """The id of the first app called NAME (another tenant's may have the same name)."""
    with store.transaction() as session:
        found = session.scalar(select(App.id).where(App.name == name).order_by(App.id))
        assert found is not None
        return found


def environment(store: Store, name: str, app: str = "web") -> int:
    """The id of APP's environment NAME, made as a preview if it does not exist."""
    with store.transaction() as session:
        owner = app_id(store, app)
        env = session.scalar(
            select(Environment).where(Environment.app_id == owner, Environment.name == name)
        )
        if env is None:
            env = Environment(app_id=owner, name=name, kind="preview", branch=f"feature/{name}")
            session.add(env)
            session.flush()
        return env.id


def release(
    store: Store,
    version: int,
    status: DeploymentStatus = DeploymentStatus.LIVE,
    *,
    env: str = "production",
    processes: dict[str, str] | None = None,
    description: str = "",
) -> int:
    """Release VERSION of "web" and a deployment of it in ENV that ended as STATUS; an earlier
    live deployment of ENV retires. Returns the deployment's id."""
    env_id = environment(store, env)
    with store.transaction() as session:
        owner = app_id(store)
        row = Release(
            app_id=owner,
            version=version,
            digest=f"sha256:{version:064x}",
            manifest=Manifest(
                app="web",
                stack="python",
                runtime="Python 3",
                layers=(),
                processes=processes or {"web": "python app.py"},
            ).to_json(),
            config={},
            description=description or f"Deploy v{version}",
        )
        session.add(row)
        session.flush()
        if status is DeploymentStatus.LIVE:
            for live in session.scalars(
                select(Deployment).where(
                    Deployment.environment_id == env_id,
                    Deployment.status == DeploymentStatus.LIVE.value,
                )
            ):
                live.status = DeploymentStatus.RETIRED.value
        deployment = Deployment(
            app_id=owner,
            environment_id=env_id,
            release_id=row.id,
            status=status.value,
            source="git",
            workflow_id=f"deploy/web/{env}",
        )
        session.add(deployment)
        session.flush()
        return deployment.id
