"""JS functions as the process that runs them sees them: calls and checks go to a JS host
(host.py), a process of its own that is started at the first of them and ends after
IDLE_SECONDS without any. V8 never loads here, so its memory (about 40 MiB, and each
isolate's heap) goes when the host does, and a crash of V8 fails the calls in flight, not
this process.

Usable from any thread: `check` blocks its caller, `run` is awaited on the caller's event
loop, and a handler's `shipway.call` is served on that same loop. Each host has two threads
here: one reads its answers, the other ends it once idle.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from shipway.errors import ServiceError
from shipway.functions.outcome import Call, CompileError, Outcome, RunStatus

log = logging.getLogger(__name__)

#: How long a host lives on with no call or check in flight.
IDLE_SECONDS = 60.0
#: How long past a call's own timeout the host may take to answer, before it is taken for
#: stuck and ended.
GRACE_SECONDS = 10.0
#: How long a check may take, a new host's start included.
CHECK_SECONDS = 30.0

Answer = concurrent.futures.Future[dict[str, Any]]


class HostLost(Exception):
    """Raised for the calls and checks in flight when the host ends, or cannot start."""


class _Child:
    """One host process: requests go to its stdin, a thread reads its answers, another ends
    it once idle."""

    def __init__(self, owner: JsProcess) -> None:
        read, write = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "shipway.functions.runtimes.js.host", str(write)],
                stdin=subprocess.PIPE,
                pass_fds=(write,),
                encoding="utf-8",
            )
        except OSError as e:
            os.close(read)
            raise HostLost(f"cannot start the JS runtime: {e}") from e
        finally:
            os.close(write)
        self._answers = os.fdopen(read, "r", encoding="utf-8")
        self._writing = threading.Lock()
        self._owner = owner
        #: Since when it has had nothing in flight (time.monotonic()); None while it has.
        self.idle_since: float | None = time.monotonic()
        #: Set once it is no longer used: closed, or ended.
        self.gone = threading.Event()
        threading.Thread(target=self._read, name="shipway-js-host", daemon=True).start()
        threading.Thread(
            target=owner._watch, args=(self,), name="shipway-js-idle", daemon=True
        ).start()

    def send(self, message: dict[str, Any]) -> None:
        """Write MESSAGE; a host that has gone is noticed by the reader, not here."""
        assert self.proc.stdin is not None
        with self._writing, contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()

    def _read(self) -> None:
        try:
            with self._answers:
                for line in self._answers:
                    self._owner._receive(self, json.loads(line))
        except Exception:  # not what the host writes: it is not to be trusted any further
            log.exception("the JS host answered with something unreadable; ending it")
            self.kill()
        finally:
            self._owner._ended(self, _describe(self.proc.wait()))

    def close(self) -> None:
        """Let the host end: it closes its isolates once its stdin ends."""
        assert self.proc.stdin is not None
        self.gone.set()
        with self._writing, contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.kill()


@dataclass
class _Pending:
    child: _Child
    answer: Answer
    loop: asyncio.AbstractEventLoop | None = None
    call: Call | None = None


class JsProcess:
    """Runs JS functions and checks JS code in a host process (see the module's docstring)."""

    def __init__(self, idle: float = IDLE_SECONDS) -> None:
        self.idle = idle
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)

    @property
    def pid(self) -> int | None:
        """The running host's process id, if one runs."""
        child = self._child
        return child.proc.pid if child is not None else None

    async def run(
        self,
        source: str,
        event: dict[str, Any],
        *,
        timeout: float,
        memory_mb: int,
        call: Call | None = None,
    ) -> Outcome:
        """As JsRuntime.run: the handler's outcome, never an exception for what the JS does;
        a host that ends during the call fails it."""
        fields = {"source": source, "event": event, "timeout": timeout, "memory_mb": memory_mb}
        try:
            run_id, pending = self._request(
                "run", {**fields, "calls": call is not None}, asyncio.get_running_loop(), call
            )
        except HostLost as e:
            return Outcome.failed(str(e))
        try:
            async with asyncio.timeout(timeout + GRACE_SECONDS):
                answer = await asyncio.wrap_future(pending.answer)
        except HostLost as e:
            return Outcome.failed(f"the JS runtime stopped during the call: {e}")
        except TimeoutError:
            log.error("the JS host did not answer %g s past a call's timeout", GRACE_SECONDS)
            pending.child.kill()
            return Outcome.failed("the JS runtime stopped answering")
        except asyncio.CancelledError:
            self._forget(run_id)
            pending.child.send({"op": "cancel", "id": run_id})
            raise
        return Outcome(
            RunStatus(answer["status"]),
            result=answer["result"],
            error=answer["error"],
            logs=answer["logs"],
            duration=answer["duration"],
        )

    def check(self, source: str) -> None:
        """Raise CompileError unless SOURCE compiles and defines `handler` (as the runtime's
        check); ServiceError when the host cannot answer. Blocks."""
        try:
            run_id, pending = self._request("check", {"source": source})
            answer = pending.answer.result(timeout=CHECK_SECONDS)
        except HostLost as e:
            raise ServiceError(f"the JS code could not be checked: {e}") from None
        except concurrent.futures.TimeoutError:
            self._forget(run_id)
            raise ServiceError(
                f"the JS code could not be checked: no answer within {CHECK_SECONDS:g} s"
            ) from None
        error = answer["error"]
        if error is not None:
            raise CompileError(error["message"], line=error["line"])

    async def close(self) -> None:
        """End the host now (a later call starts another) and wait until it has gone."""
        with self._lock:
            child, self._child = self._child, None
        if child is None:
            return
        child.close()
        try:
            await asyncio.to_thread(child.proc.wait, GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()

    def _request(
        self,
        op: str,
        fields: dict[str, Any],
        loop: asyncio.AbstractEventLoop | None = None,
        call: Call | None = None,
    ) -> tuple[int, _Pending]:
        with self._lock:
            if self._child is None:
                self._child = _Child(self)
            self._child.idle_since = None
            run_id = next(self._ids)
            pending = self._pending[run_id] = _Pending(self._child, Answer(), loop, call)
        pending.child.send({"op": op, "id": run_id, **fields})
        return run_id, pending

    def _receive(self, child: _Child, message: dict[str, Any]) -> None:
        """One answer from CHILD (on its reader thread)."""
        run_id = int(message["id"])
        if message["op"] == "call":
            # The host asks only for calls that may make them (`calls` in their run).
            pending = self._pending.get(run_id)
            if pending is not None and pending.loop is not None and pending.call is not None:
                serve = self._serve(child, pending.call, message)
                try:
                    asyncio.run_coroutine_threadsafe(serve, pending.loop)
                except RuntimeError:  # the caller's loop has closed: the call is over
                    serve.close()
            return
        with self._lock:
            pending = self._pending.pop(run_id, None)
            self._idle_after()
        if pending is not None:
            with contextlib.suppress(concurrent.futures.InvalidStateError):  # its caller gave up
                pending.answer.set_result(message)

    async def _serve(self, child: _Child, call: Call, message: dict[str, Any]) -> None:
        """A handler's shipway.call, on its caller's loop; the answer goes back to the host."""
        try:
            ok, text = True, json.dumps(await call(message["name"], message["params"]))
        except Exception as e:  # any failure of the callee is the caller's JS error
            ok, text = False, str(e) or type(e).__name__
        reply = {"op": "reply", "id": message["id"], "req": message["req"], "ok": ok}
        child.send({**reply, "text": text})

    def _ended(self, child: _Child, how: str) -> None:
        """CHILD has ended (on its reader thread): what it had in flight fails."""
        child.gone.set()
        with self._lock:
            if self._child is child:
                self._child = None
            lost = {i: p for i, p in self._pending.items() if p.child is child}
            for run_id in lost:
                del self._pending[run_id]
        if lost:
            log.error("the JS host ended (%s) with %d call(s) in flight", how, len(lost))
        for pending in lost.values():
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                pending.answer.set_exception(HostLost(how))

    def _forget(self, run_id: int) -> None:
        with self._lock:
            self._pending.pop(run_id, None)
            self._idle_after()

    def _idle_after(self) -> None:
        """With the lock held: once nothing is in flight, the host's idle time starts."""
        child = self._child
        if child is not None and not self._pending and child.idle_since is None:
            child.idle_since = time.monotonic()

    def _watch(self, child: _Child) -> None:
        """Let CHILD end once it has had nothing in flight for IDLE seconds (on a thread of
        its own, which wakes about once an idle time: a call costs no thread or timer)."""
        wait = self.idle
        while not child.gone.wait(wait):
            with self._lock:
                if self._child is not child:
                    return
                since = child.idle_since
                wait = self.idle if since is None else since + self.idle - time.monotonic()
                if wait > 0:
                    continue
                self._child = None
            child.close()
            return


def _describe(code: int) -> str:
    """How a host ended, from its return code (-N: killed by signal N)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:  # a signal Python has no name for
            return f"killed by signal {-code}"
    return f"exit code {code}"


_shared: JsProcess | None = None
_sharing = threading.Lock()


def shared() -> JsProcess:
    """This process's JS host."""
    global _shared
    with _sharing:
        if _shared is None:
            _shared = JsProcess()
        return _shared


def check(source: str) -> None:
    """Check SOURCE in this process's JS host (see JsProcess.check)."""
    shared().check(source)
