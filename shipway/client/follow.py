"""Follow a log the server streams as server-sent events (a build's, an app's, the audit
trail's): `shipway logs -f`, `shipway builds logs -f`, `shipway audit tail` and the output of
a push read it the same way, and a stream that drops is resumed where it stopped."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from shipway.client.api import Api, describe_error
from shipway.errors import ClientError
from shipway.logs.sse import SseEvent, iter_sse

#: A followed log is idle at most 15 s between keep-alives; longer silence means a dead link.
READ_TIMEOUT = 60.0

#: How often a followed stream that drops is resumed (with Last-Event-ID) before giving up,
#: waiting RECONNECT_PAUSE seconds longer each time.
RECONNECTS = 5
RECONNECT_PAUSE = 1.0


def read_log(
    api: Api,
    build_id: int,
    *,
    follow: bool,
    on_line: Callable[[str], Any],
    client: httpx.Client | None = None,
) -> str | None:
    """Pass each line of the build's log to ON_LINE; the build's status if the log ended."""
    path, params = f"/builds/{build_id}/logs", {"follow": "true" if follow else "false"}
    return read_events(api, path, params, follow=follow, on_line=on_line, client=client)


def read_events(
    api: Api,
    path: str,
    params: dict[str, str],
    *,
    follow: bool,
    on_line: Callable[[str], Any],
    client: httpx.Client | None = None,
) -> str | None:
    """Pass each line of the log streamed at PATH (a build's, an app's) to ON_LINE; the status
    its end event carries, None if it has none. A followed stream that drops is resumed where
    it stopped, by Last-Event-ID."""

    def on_event(event: SseEvent, body: dict[str, Any]) -> int | None:
        if event.event == "line":
            on_line(str(body["line"]))
            return int(body["seq"])
        if event.event == "end":
            raise Ended(str(body["status"]))
        return None

    return stream_events(api, path, params, follow=follow, on_event=on_event, client=client)


class Ended(Exception):
    """Raised by an event handler when the stream's end event has come, with its status."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def stream_events(
    api: Api,
    path: str,
    params: dict[str, Any],
    *,
    follow: bool,
    on_event: Callable[[SseEvent, dict[str, Any]], int | None],
    client: httpx.Client | None = None,
) -> str | None:
    """Pass each event streamed at PATH to ON_EVENT, which answers the id to resume after
    (None: not an event to resume by) or raises Ended. An error event becomes a ClientError;
    a followed stream that drops is resumed by Last-Event-ID. The status Ended carried, or
    None when the stream closed without one."""
    if client is not None:
        return _read(client, api, path, params, follow, on_event)
    timeout = httpx.Timeout(api.timeout, read=READ_TIMEOUT)
    with api.client(timeout=timeout) as own:
        return _read(own, api, path, params, follow, on_event)


def _read(
    http: httpx.Client,
    api: Api,
    path: str,
    params: dict[str, Any],
    follow: bool,
    on_event: Callable[[SseEvent, dict[str, Any]], int | None],
) -> str | None:
    url = f"{api.url}/api/v1{path}"
    last, drops, streamed = 0, 0, False
    while True:
        headers = {"Authorization": f"Bearer {api.token}"}
        if last:
            headers["Last-Event-ID"] = str(last)
        try:
            with http.stream("GET", url, params=params, headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ClientError(describe_error(response))
                streamed = True
                for event in iter_sse(response):
                    body = _body(event)
                    if event.event == "error":
                        raise ClientError(str(body["message"]))
                    try:
                        resume = on_event(event, body)
                    except Ended as e:
                        return e.status
                    if resume is not None:
                        last, drops = resume, 0
            return None
        except httpx.TransportError as e:
            drops += 1
            if not (follow and streamed) or drops > RECONNECTS:
                raise ClientError(f"lost the log stream from {api.url}: {e}") from e
            time.sleep(RECONNECT_PAUSE * drops)


def _body(event: SseEvent) -> dict[str, Any]:
    try:
        body = json.loads(event.data)
    except ValueError as e:
        raise ClientError(f"the server sent a malformed {event.event} event: {e}") from e
    if not isinstance(body, dict):
        raise ClientError(f"the server sent a malformed {event.event} event")
    return body
