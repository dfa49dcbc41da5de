"""Following a log streamed as server-sent events: its lines, the status its end carries, a
dropped stream resumed by Last-Event-ID, and every failure as one ClientError."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from shipway.client import follow
from shipway.client.api import Api
from shipway.client.follow import read_log
from shipway.errors import ClientError
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
        with pytest.raises(ClientError, match=r"no build with id 99 \(HTTP 404\)"):
            read_log(api, 99, follow=False, on_line=printed.append, client=client)


class _Dropping(httpx.SyncByteStream):
    """A response body that breaks off after its first chunk, like a restarted server."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise httpx.ReadError("connection reset by peer")


def test_a_dropped_follow_resumes_from_the_last_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow, "RECONNECT_PAUSE", 0)
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
        pytest.raises(ClientError, match=r"malformed line event"),
    ):
        read_log(Api("http://x", "t"), 5, follow=False, on_line=print, client=client)


def test_an_error_event_is_its_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = b'event: line\ndata: {"seq": 1, "line": "one"}\n\n'
        body += b'event: error\ndata: {"message": "the log store is down"}\n\n'
        return httpx.Response(200, content=body)

    printed: list[str] = []
    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(ClientError, match=r"^the log store is down$"),
    ):
        read_log(Api("http://x", "t"), 5, follow=True, on_line=printed.append, client=client)
    assert printed == ["one"]


def test_a_stream_that_keeps_dropping_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each drop after the last line counts; a line that comes through starts the count anew."""
    monkeypatch.setattr(follow, "RECONNECT_PAUSE", 0)
    tries: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        resumed = request.headers.get("Last-Event-ID")
        tries.append(resumed)
        body = b"" if resumed else b'id: 1\nevent: line\ndata: {"seq": 1, "line": "one"}\n\n'
        return httpx.Response(200, stream=_Dropping(body))

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(ClientError, match=r"^lost the log stream from http://x: "),
    ):
        read_log(Api("http://x", "t"), 5, follow=True, on_line=print, client=client)
    assert tries == [None] + ["1"] * follow.RECONNECTS


def test_a_stream_is_not_resumed_unless_followed_and_once_started() -> None:
    tries = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal tries
        tries += 1
        raise httpx.ConnectError("connection refused")

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(ClientError, match=r"^lost the log stream from http://x: connection refused"),
    ):
        read_log(Api("http://x", "t"), 5, follow=True, on_line=print, client=client)
    assert tries == 1

    def dropping(request: httpx.Request) -> httpx.Response:
        nonlocal tries
        tries += 1
        return httpx.Response(200, stream=_Dropping(b""))

    with (
        httpx.Client(transport=httpx.MockTransport(dropping)) as client,
        pytest.raises(ClientError, match=r"^lost the log stream"),
    ):
        read_log(Api("http://x", "t"), 5, follow=False, on_line=print, client=client)
    assert tries == 2
