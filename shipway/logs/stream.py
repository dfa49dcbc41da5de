"""A log as server-sent events, for the API and the dashboard alike.

Each line is `id: <seq>` / `event: line` / `data: RENDER(seq, line)`; a log that ends says so
with `event: end` / `data: {"status": "..."}`, after which the stream closes. A failure to
read the live tail is `event: failure` / `data: {"code": "...", "message": "..."}`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

from nats.js import JetStreamContext

from shipway.errors import ShipwayError
from shipway.logs import sse
from shipway.logs.follow import Finished, follow
from shipway.store import Store

#: The data of one line event, from its seq and text.
Render = Callable[[int, str], str]


def as_json(seq: int, line: str) -> str:
    return json.dumps({"seq": seq, "line": line})


async def events(
    store: Store,
    js: JetStreamContext | None,
    kind: str,
    owner_id: int,
    after: int,
    *,
    finished: Finished | None,
    over: str | None,
    lookback: float | None = None,
    render: Render = as_json,
    failure: str = "error",
) -> AsyncIterator[str]:
    """The log after seq AFTER: stored lines, then (with JS) the live tail until FINISHED says
    its owner ended. OVER is the owner's status if it had ended when asked (None: it runs, or
    the log never ends); FAILURE names the event a broken tail is sent as."""
    try:
        async for event in follow(
            store,
            js,
            kind,
            owner_id,
            after,
            live=js is not None,
            finished=finished,
            lookback=lookback,
        ):
            if event.type == "line":
                yield sse.encode("line", render(event.seq, event.line), id=event.seq)
            elif event.type == "end":
                yield end(event.status or over or "ended")
                return
            else:
                yield sse.KEEP_ALIVE
    except ShipwayError as e:
        yield sse.encode(failure, json.dumps({"code": e.code, "message": e.message}))
        return
    if over is not None:
        yield end(over)


def end(status: str) -> str:
    return sse.encode("end", json.dumps({"status": status}))
