"""`shipway builds logs`: print a build's log, follow it, fail on a failed build."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from typer.testing import CliRunner

from shipway.cli.builds import builds
from shipway.embedded import ports
from shipway.errors import ClientError
from shipway.settings import Settings
from shipway.store import Store
from tests.logs.conftest import make_build, make_tenant
from tests.logs.test_routes import make_app, store_lines


@pytest.fixture
def served(store: Store, settings: Settings) -> Iterator[str]:
    """The log routes behind a real uvicorn on a free loopback port."""
    port = ports.any_free()
    server = uvicorn.Server(
        uvicorn.Config(make_app(store, settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_the_command_prints_the_log_and_fails_on_a_failed_build(store: Store, served: str) -> None:
    acme = make_tenant(store, "acme")
    failed = make_build(store, acme, status="failed")
    store_lines(store, failed, 2)
    done = make_build(store, acme, status="succeeded")
    env = {"SHIPWAY_URL": served, "SHIPWAY_TOKEN": acme.token}
    runner = CliRunner()

    result = runner.invoke(builds, ["logs", str(failed), "-f"], env=env)
    assert result.stdout == "line 1\nline 2\n"
    assert isinstance(result.exception, ClientError)
    assert str(result.exception) == f"build {failed} failed"

    result = runner.invoke(builds, ["logs", str(done)], env=env)
    assert result.exit_code == 0 and result.stdout == ""

    result = runner.invoke(builds, ["logs", "abc"], env=env)
    assert result.exit_code == 2
