"""The router on a thread of its own, with an event loop of its own: uvloop's when installed.

The node's event loop also runs the Temporal worker, the instances' supervision and their
logs; on a loop of its own the router's requests do not wait behind those callbacks, and on
uvloop they do not pay for asyncio's selector loop written in Python either. The thread shares
the route table with the node (each switch is one dict assignment, so a request sees the old
route or the new one), and the router runs an app's waker on the node's loop, where it belongs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable

from shipway.router.proxy import Router

log = logging.getLogger(__name__)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's event loop when it is installed, else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # an optional speed-up: asyncio's loop serves the same
        return asyncio.new_event_loop
    return uvloop.new_event_loop


class RouterThread:
    """Serves ROUTER on SOCK from a thread of its own until `stop()`."""

    def __init__(self, router: Router, sock: socket.socket) -> None:
        self.router = router
        self.sock = sock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        """Start serving; returns once the router accepts connections."""
        home = asyncio.get_running_loop()
        self.router.home = home
        ready: asyncio.Future[None] = home.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(home, ready), name="router", daemon=True
        )
        self._thread.start()
        await ready

    def _run(self, home: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        def tell(error: BaseException | None) -> None:
            if ready.done():
                return
            if error is None:
                ready.set_result(None)
            else:
                ready.set_exception(error)

        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            try:
                runner.run(self._serve(lambda: home.call_soon_threadsafe(tell, None)))
            except BaseException as e:
                home.call_soon_threadsafe(tell, e)
                if not isinstance(e, Exception):
                    raise
                log.exception("router: the router thread failed")

    async def _serve(self, started: Callable[[], object]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await self.router.serve(self.sock)
        started()
        try:
            await self._stopped.wait()
        finally:
            server.close()
            self.router.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    async def stop(self) -> None:
        """Stop accepting, close the router's connections and end the thread."""
        loop, stopped, thread = self._loop, self._stopped, self._thread
        if loop is not None and stopped is not None:
            with contextlib.suppress(RuntimeError):  # the thread's loop has already ended
                loop.call_soon_threadsafe(stopped.set)
        if thread is not None:
            await asyncio.to_thread(thread.join, 10)
