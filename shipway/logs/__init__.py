"""Logs: lines go to NATS JetStream live and to the store in batches, masked, and are followed
by SSE clients and the `git push` output: stored lines first, then the live tail.

The names below load on first use, so a client that only reads SSE (the git hook, the CLI)
does not pay for importing the store and NATS clients. `follow` shares its name with its
module, so it is imported from shipway.logs.follow directly.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipway.logs.bus import ensure_streams
    from shipway.logs.event import LogEvent
    from shipway.logs.mask import Masker
    from shipway.logs.writer import PRIVATE_LINE, LogWriter

_WHERE = {
    "ensure_streams": "bus",
    "LogEvent": "event",
    "Masker": "mask",
    "PRIVATE_LINE": "writer",
    "LogWriter": "writer",
}

__all__ = ["PRIVATE_LINE", "LogEvent", "LogWriter", "Masker", "ensure_streams"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'shipway.logs' has no attribute {name!r}")
    return getattr(import_module(f"shipway.logs.{_WHERE[name]}"), name)
