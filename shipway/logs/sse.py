"""Server-sent events, both ways: encode them for a response, parse them from one.

The parser follows the WHATWG event-stream rules, so the CLI, `shipway deploy` and anything
else that reads a log over HTTP share one reading of the wire format.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Protocol

KEEP_ALIVE = ": keep-alive\n\n"


def encode(event: str, data: str, id: int | str | None = None) -> str:
    """One event; DATA may span lines."""
    head = f"id: {id}\n" if id is not None else ""
    body = "".join(f"data: {part}\n" for part in data.split("\n"))
    return f"{head}event: {event}\n{body}\n"


class SseEvent(NamedTuple):
    event: str
    id: str | None
    data: str


class SseParser:
    """Feed it lines (without their endings); it returns an event at each blank line."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        return None

    def _dispatch(self) -> SseEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SseEvent(event or "message", self.last_id, "\n".join(data))


class _Lines(Protocol):
    def iter_lines(self) -> Iterator[str]: ...


def iter_sse(response: _Lines) -> Iterator[SseEvent]:
    """The events of a streamed (sync) httpx response."""
    parser = SseParser()
    for line in response.iter_lines():
        event = parser.feed(line)
        if event is not None:
            yield event
