"""The route table: which host is served by which app environment, and how."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from shipway.router.upstream import Upstream


@dataclass
class Route:
    """How one host is served: by upstreams, from a static root, or after a wake-up."""

    app: str
    environment: str
    upstreams: tuple[Upstream, ...] = ()
    static_root: Path | None = None
    #: Starts an instance of a scaled-to-zero app and returns once it is healthy, after
    #: switching the table to a route with upstreams.
    waker: Callable[[], Awaitable[None]] | None = None
    #: time.monotonic() of the last request routed here, for idle detection.
    last_request: float = field(default_factory=time.monotonic)
    _turn: int = field(default=0, init=False, repr=False, compare=False)

    def next_upstream(self) -> Upstream:
        """The next upstream in round-robin order; the route must have at least one."""
        upstreams = self.upstreams
        turn = self._turn
        self._turn = turn + 1
        return upstreams[turn % len(upstreams)]


def _key(host: str) -> str:
    """Hosts match without case and without a trailing dot."""
    return host.lower().rstrip(".")


class RouteTable:
    """Routes by host name (no port), e.g. "myapp.localhost" or "myapp--feature-x.localhost".

    The event loop runs one thing at a time, so a switch is atomic for the proxy: a request
    sees the old route or the new one, never a mix.
    """

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}

    def get(self, host: str) -> Route | None:
        """The route of HOST, or None when nothing is served there."""
        return self._routes.get(host) or self._routes.get(_key(host))

    def switch(self, host: str, route: Route) -> Route | None:
        """Serve HOST by ROUTE from the next request on; returns the route it replaces."""
        key = _key(host)
        old = self._routes.get(key)
        self._routes[key] = route
        return old

    def remove(self, host: str) -> Route | None:
        """Stop serving HOST; returns the route it had."""
        return self._routes.pop(_key(host), None)

    def hosts(self) -> list[str]:
        """The hosts served, sorted."""
        return sorted(self._routes)
