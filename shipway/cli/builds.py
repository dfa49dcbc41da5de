"""`shipway builds …`: list an app's builds, print or follow a build's log (and read any log
streamed as server-sent events)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import typer

from shipway.cli.client import Api, CliError, describe_error
from shipway.cli.output import console, emit_json, errors, table
from shipway.cli.resources import DataOpt, JsonOpt
from shipway.logs.sse import SseEvent, iter_sse

builds = typer.Typer(help="List builds and read their logs.", no_args_is_help=True)

FollowOpt = Annotated[
    bool, typer.Option("-f", "--follow", help="keep printing new lines until the build ends")
]

#: A followed log is idle at most 15 s between keep-alives; longer silence means a dead link.
READ_TIMEOUT = 60.0

#: How often a followed stream that drops is resumed (with Last-Event-ID) before giving up,
#: waiting RECONNECT_PAUSE seconds longer each time.
RECONNECTS = 5
RECONNECT_PAUSE = 1.0


@builds.command("list")
def builds_list(
    app: Annotated[str, typer.Option("--app", help="the app whose builds to list")],
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """List an app's builds, newest first."""
    items = Api.find(data).get(f"/apps/{app}/builds")
    if as_json:
        emit_json(items)
    else:
        columns = ["id", "status", "commit", "stack", "pool", "builder", "duration", "created_at"]
        table(items, columns, empty="No builds yet.")
        for item in items:
            if item.get("waiting"):
                console.print(f"Build {item['id']} waits: {item['waiting']}", style="yellow")


@builds.command("cancel")
def builds_cancel(build_id: int, data: DataOpt = None) -> None:
    """Cancel a queued or running build; its sandbox is killed at once."""
    Api.find(data).post(f"/builds/{build_id}/cancel", {})
    console.print(f"Build {build_id} cancelled.")


@builds.command("logs")
def builds_logs(build_id: int, follow: FollowOpt = False, data: DataOpt = None) -> None:
    """Print a build's log; with -f, follow it live until the build ends."""
    status = read_log(Api.find(data), build_id, follow=follow, on_line=typer.echo)
    if status == "failed":
        raise CliError(f"build {build_id} failed")
    if status in ("cancelled", "superseded"):
        errors.print(f"build {build_id} was {status}", style="dim", highlight=False)


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
    (None: not an event to resume by) or raises Ended. An error event becomes a CliError;
    a followed stream that drops is resumed by Last-Event-ID. The status Ended carried, or
    None when the stream closed without one."""
    if client is not None:
        return _read(client, api, path, params, follow, on_event)
    timeout = httpx.Timeout(api.timeout, read=READ_TIMEOUT)
    with httpx.Client(timeout=timeout) as own:
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
                    raise CliError(describe_error(response))
                streamed = True
                for event in iter_sse(response):
                    body = _body(event)
                    if event.event == "error":
                        raise CliError(str(body["message"]))
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
                raise CliError(f"lost the log stream from {api.url}: {e}") from e
            time.sleep(RECONNECT_PAUSE * drops)


def _body(event: SseEvent) -> dict[str, Any]:
    try:
        body = json.loads(event.data)
    except ValueError as e:
        raise CliError(f"the server sent a malformed {event.event} event: {e}") from e
    if not isinstance(body, dict):
        raise CliError(f"the server sent a malformed {event.event} event")
    return body
