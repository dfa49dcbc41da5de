"""The whole API behind uvicorn on a free port, with a stand-in Temporal that ends each
deployment it is asked to start at once, and the environment that points the CLI at it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from shipway import eventbus
from shipway.api.app import create_app
from shipway.context import Context
from shipway.deploys import service
from shipway.deploys.lifecycle import DeploymentStatus
from shipway.embedded import ports
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import Deployment


@dataclass
class InstantTemporal:
    """Takes a started deployment straight to live, or to failed with FAILURE as the reason;
    with HOLD, leaves it deploying until the test calls `finish`."""

    store: Store
    failure: str | None = None
    hold: bool = False

    async def start_workflow(self, _run: Any, spec: Any, **kwargs: Any) -> None:
        with self.store.transaction() as session:
            deployment = session.get(Deployment, spec.deployment_id)
            assert deployment is not None
            service.move_deployment(session, deployment, DeploymentStatus.DEPLOYING)
        if not self.hold:
            self.finish(spec.deployment_id)

    def finish(self, deployment_id: int) -> None:
        """End a deploying deployment as the workflow would: live, or failed with FAILURE."""
        with self.store.transaction() as session:
            deployment = session.get(Deployment, deployment_id)
            assert deployment is not None
            if self.failure is not None:
                service.move_deployment(session, deployment, DeploymentStatus.FAILED, self.failure)
                return
            for live in session.query(Deployment).filter(
                Deployment.environment_id == deployment.environment_id,
                Deployment.status == DeploymentStatus.LIVE.value,
            ):
                service.move_deployment(session, live, DeploymentStatus.RETIRED)
            service.move_deployment(session, deployment, DeploymentStatus.LIVE)


@dataclass
class Server:
    env: dict[str, str]
    temporal: InstantTemporal


@pytest.fixture
def server(
    store: Store, settings: Settings, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Server]:
    # Without NATS nothing nudges a waiting request: it looks again this often.
    monkeypatch.setattr(eventbus, "RECHECK", 0.1)
    temporal = InstantTemporal(store)
    app = create_app(Context(settings, store, temporal=temporal))  # type: ignore[arg-type]
    port = ports.any_free()
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        assert thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    yield Server(
        {"SHIPWAY_URL": f"http://127.0.0.1:{port}", "SHIPWAY_TOKEN": admin_token}, temporal
    )
    running.should_exit = True
    thread.join(10)


def shipway(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`shipway ARGS` in a subprocess, its output piped, as a user with HOME and no server
    would run it (in HOME, so that no git work tree around the tests is taken for the
    user's); ENV adds to its environment, a server's for one."""
    return subprocess.run(
        [sys.executable, "-m", "shipway", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "SHIPWAY_DATA": str(home), **(env or {})},
        cwd=home,
        timeout=60,
    )
