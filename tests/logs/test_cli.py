"""`shipway builds logs`: read the SSE stream, resume a dropped one, fail on a failed build."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shipway.cli import builds as cli_builds
from shipway.cli.builds import builds, read_log
from shipway.cli.client import Api, CliError
from shipway.embedded import ports
from shipway.settings import Settings
from shipway.store import Store
from tests.logs.conftest import make_build, make_tenant
from tests.logs.test_routes import make_app, store_lines


def test_read_log_returns_the_lines_and_the_status(store: Store, settings: Settings) -> None:
    acme = make_tenant(store, "acme")
    build_id = make_build(store, acme, status="succeeded")
    store_lines(store, build_id, 3)
    printed: list[str] = []
    with TestClient(make_app(store, settings)) as client:
        api = Api("http://testserver", acme.token)
        status = read_log(api, build_id, follow=True, on_line=printed.append, client=client)
        assert status == "succeeded"
        assert printed == ["line 1", "line 2", "line 3"]
        with pytest.raises(CliError, match=r"no build with id 99 \(HTTP 404\)"):
            read_log(api, 99, follow=False, on_line=printed.append, client=client)


class _Dropping(httpx.SyncByteStream):
    """A response body that breaks off after its first chunk, like a restarted server."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise httpx.ReadError("connection reset by peer")


def test_a_dropped_follow_resumes_from_the_last_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_builds, "RECONNECT_PAUSE", 0)
    resumed_from: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        resumed_from.append(request.headers.get("Last-Event-ID"))
        sse = {"content-type": "text/event-stream"}
        if len(resumed_from) == 1:
            body = b'id: 1\nevent: line\ndata: {"seq": 1, "line": "one"}\n\nid: 2\nevent: li'
            return httpx.Response(200, headers=sse, stream=_Dropping(body))
        body = (
            b'id: 2\nevent: line\ndata: {"seq": 2, "line": "two"}\n\n'
            b'event: end\ndata: {"status": "failed"}\n\n'
        )
        return httpx.Response(200, headers=sse, content=body)

    printed: list[str] = []
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        status = read_log(
            Api("http://x", "t"), 5, follow=True, on_line=printed.append, client=client
        )
    assert (status, printed, resumed_from) == ("failed", ["one", "two"], [None, "1"])


def test_a_broken_event_is_one_clear_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"event: line\ndata: {not json\n\n")

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(CliError, match="malformed line event"),
    ):
        read_log(Api("http://x", "t"), 5, follow=False, on_line=print, client=client)


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
    assert isinstance(result.exception, CliError)
    assert str(result.exception) == f"build {failed} failed"

    result = runner.invoke(builds, ["logs", str(done)], env=env)
    assert result.exit_code == 0 and result.stdout == ""

    result = runner.invoke(builds, ["logs", "abc"], env=env)
    assert result.exit_code == 2
