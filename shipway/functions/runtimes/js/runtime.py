"""The JS runtime: each call gets a brand-new V8 isolate, bounded in time and memory.

A JS function is one file that defines `handler(event)`, plain or async. What it returns (or
its promise resolves with) is the call's JSON result; what it throws is the call's error.

Isolation
    Every call runs in a fresh isolate (its own heap, its own global object), which is closed
    when the call ends: nothing of one call is ever seen by another. Isolates are made ahead
    of need by a small warm pool so that a call does not wait for one; each is handed out
    once. V8 alone has no network, files or processes, and nothing here adds any: the globals
    are ECMAScript's plus `console`, `setTimeout` and `shipway.call`.

Data, not code
    The event goes in, and the results of `shipway.call` come back, as JSON text inside a JS
    string literal that the bootstrap parses; no user data is ever spliced into code.

Time
    `timeout` bounds the whole call, top-level code included. On expiry, the JS running is
    terminated (V8 TerminateExecution) and the isolate is torn down, which also stops code
    spinning in a promise callback or a timer.

Memory
    The isolate gets a hard limit on its V8 heap: after a garbage collection that leaves more
    than `memory_mb` in use, V8 terminates the JS. The heap in use can include garbage that
    only a full collection would free, so code that churns through large objects can hit the
    limit below its live size. Memory outside the V8 heap, which that limit does not see, has
    a budget of its own of `memory_mb`: the bootstrap wraps every way to a new ArrayBuffer or
    typed-array backing store, refusing one (a RangeError) that would take the call past it,
    and gives the bytes back when the garbage collector reports them freed, which it can only
    do once the handler yields to a timer. WebAssembly is not offered.

Threads
    Isolates run on mini-racer's own threads. Calls drive them with cancellable evaluations
    only, awaited on the running event loop, and only ever exchange strings with them, so a
    runaway handler never blocks the loop. Making and closing isolates, which block for a
    millisecond or two, happens in a small thread pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, TypeVar

from py_mini_racer import (
    JSEvalException,
    JSParseException,
    MiniRacer,
    init_mini_racer,
    mini_racer,
)

from shipway.functions.declared import DEFAULT_MEMORY_MB
from shipway.functions.outcome import Call, CompileError, Outcome, RunStatus

#: The largest source accepted, in bytes of UTF-8.
MAX_SOURCE_BYTES = 1 << 20
#: How long `check` lets the top-level code run, in seconds.
CHECK_TIMEOUT = 1.0
#: The memory limit `check` runs the top-level code under.
CHECK_MEMORY_MB = 128
#: How many console lines, and characters in all, one call keeps.
MAX_LOG_LINES = 1000
MAX_LOG_CHARS = 64 * 1024
#: How many `shipway.call`s one call may have waiting at once.
MAX_PENDING_CALLS = 64

#: Between polls of a handler that is waiting (on a timer, say), the pause starts here and
#: doubles up to the maximum; anything it asks of Python wakes the loop at once.
_FIRST_PAUSE = 0.001
_MAX_PAUSE = 0.025

_NOT_AVAILABLE = "calling other functions is not available here"

#: The file name stack traces and error reports give the user's code, and the one they give
#: shipway's own scripts, whose frames are cut from the stacks handlers see.
SOURCE_NAME = "function.js"
_HOST_NAME = "shipway:host"

log = logging.getLogger(__name__)

# The bootstrap, installed in every fresh isolate before the user's code. It keeps its state
# in a closure and the few builtins it needs in locals, so that ordinary user code (which may
# well redefine globals) cannot disturb it; a call that sets out to can only spoil its own
# outcome. Python reads everything back through poll(), as one JSON string. Its file holds
# placeholders for the limits below, filled in once, here.
_BOOTSTRAP_FILE = Path(__file__).with_name("bootstrap.js")
_BOOTSTRAP = Template(_BOOTSTRAP_FILE.read_text(encoding="utf-8")).substitute(
    host_name=_HOST_NAME,
    max_lines=MAX_LOG_LINES,
    max_chars=MAX_LOG_CHARS,
    max_pending=MAX_PENDING_CALLS,
    not_available=json.dumps(_NOT_AVAILABLE),
    external_bytes=DEFAULT_MEMORY_MB << 20,
)

# mini-racer reports errors in the user's script as "function.js:LINE: MESSAGE", then the
# source line, a caret and, for thrown errors, the stack. A syntax error that V8 meets before
# it has read the sourceURL comment is reported as "<anonymous>:LINE: ..." instead.
_ERROR_HEAD = re.compile(rf"^(?:{re.escape(SOURCE_NAME)}|<anonymous>):(\d+): (.*)$", re.MULTILINE)

T = TypeVar("T")


class _TimedOut(Exception):
    """Raised when a call, or checked top-level code, runs past its time."""


class _OutOfMemory(Exception):
    """Raised when V8 stopped the JS for going over the isolate's memory limit."""


class _LoadError(Exception):
    """Raised when the user's script does not compile, or its top-level code throws."""

    def __init__(self, message: str, line: int | None, stack: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.stack = stack


class _Broken(Exception):
    """Raised when what the isolate reports back is not what the bootstrap writes."""


# V8 must be set up by the main thread: set up by any other, it crashes the process
# (SIGSEGV) when one thread makes an isolate while another runs JS. Importing this module
# is how the process sets it up; an import from another thread is refused.
if threading.current_thread() is not threading.main_thread():
    raise ImportError("the JS runtime must first be imported by the main thread")
init_mini_racer(ignore_duplicate_init=True)
# Isolates made and closed in several threads at once could still abort the process (V8's
# "Check failed: !IsConfigurablePoolInitialized()"): 2 of 60 runs of a thousand checks in four
# threads did. With one isolate made here, by the main thread, and kept for the life of the
# process, none of 120 runs did.
_KEPT = MiniRacer()


class _Isolate:
    """One fresh V8 isolate with the bootstrap installed; used for one call, then closed."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Blocks while V8 makes the isolate; LOOP is where its evaluations are awaited
        (None: the running one)."""
        self._stack = ExitStack()
        self._racer: MiniRacer = self._stack.enter_context(mini_racer(loop))

    async def bootstrap(self) -> None:
        await self.eval(_BOOTSTRAP)

    def limit_memory(self, memory_mb: int) -> None:
        self._racer.set_hard_memory_limit(memory_mb << 20)

    def out_of_memory(self) -> bool:
        return self._racer.was_hard_memory_limit_reached()

    async def eval(self, code: str) -> object:
        """Evaluate CODE, cancellably; an error that the memory limit caused becomes
        _OutOfMemory, whichever code it hit."""
        try:
            value = await self._racer.eval_cancelable(code)
        except JSEvalException:
            if self.out_of_memory():
                raise _OutOfMemory from None
            raise
        if self.out_of_memory():
            raise _OutOfMemory
        return value

    async def host(self, code: str) -> str:
        """Evaluate a call into the bootstrap, which always answers with a string."""
        try:
            value = await self.eval(f"{code}\n//# sourceURL={_HOST_NAME}")
        except JSEvalException as e:
            raise _Broken(str(e)) from e
        if not isinstance(value, str):
            raise _Broken(f"the runtime answered with {type(value).__name__}")
        return value

    async def load(self, source: str) -> None:
        """Run SOURCE's top-level code."""
        try:
            await self.eval(f"{source}\n//# sourceURL={SOURCE_NAME}")
        except JSParseException as e:
            raise _load_error(str(e), syntax=True) from e
        except JSEvalException as e:
            raise _load_error(str(e), syntax=False) from e

    async def handler_type(self) -> str:
        """The type of what the top-level code left as `handler`."""
        return await self.host("__shipway_host.handlerType()")

    def close(self) -> None:
        """Blocks while V8 stops any JS still running and frees the isolate."""
        self._stack.close()


def _load_error(report: str, *, syntax: bool) -> _LoadError:
    """A _LoadError from mini-racer's REPORT of an error in the user's script."""
    head = _ERROR_HEAD.search(report)
    if head is None:
        return _LoadError(report.strip() or "the code could not be loaded", None, None)
    line, message = int(head.group(1)), head.group(2)
    stack = None
    if not syntax:
        # The stack, when there is one, follows the blank line after the caret.
        _, _, tail = report.partition("\n\n")
        stack = tail.strip() or None
        return _LoadError(f"{message} at line {line}, in the top-level code", line, stack)
    return _LoadError(f"{message} at line {line}", line, stack)


def _no_handler_message(kind: str) -> str:
    if kind == "undefined":
        return "the code defines no function `handler`"
    return f"`handler` is a {kind}, not a function"


def _check_size(source: str) -> None:
    size = len(source.encode("utf-8"))
    if size > MAX_SOURCE_BYTES:
        raise CompileError(
            f"the code is {size} bytes; a JS function may be at most {MAX_SOURCE_BYTES} bytes"
        )


async def _bounded(work: Awaitable[T], timeout: float) -> T:
    try:
        async with asyncio.timeout(timeout):
            return await work
    except TimeoutError:
        raise _TimedOut from None


def check(source: str) -> None:
    """Raise CompileError unless SOURCE compiles and its top-level code defines `handler`.

    The top-level code runs, in a fresh isolate, within CHECK_TIMEOUT and CHECK_MEMORY_MB;
    the handler does not. Blocks; it runs its own event loop in a thread of its own, so it
    may be called from anywhere, including a coroutine (which it then blocks)."""
    _check_size(source)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipway-js-check") as pool:
        pool.submit(asyncio.run, _check(source)).result()


async def _check(source: str) -> None:
    isolate = _Isolate(None)
    try:
        await isolate.bootstrap()
        isolate.limit_memory(CHECK_MEMORY_MB)
        await _bounded(isolate.load(source), CHECK_TIMEOUT)
        kind = await isolate.handler_type()
    except _LoadError as e:
        raise CompileError(e.message, line=e.line) from None
    except _TimedOut:
        raise CompileError(
            f"the top-level code did not finish within {CHECK_TIMEOUT:g} s"
        ) from None
    except _OutOfMemory:
        raise CompileError(
            f"the top-level code exceeded the {CHECK_MEMORY_MB} MiB memory limit"
        ) from None
    except _Broken as e:
        raise CompileError(f"the code could not be checked: {e}") from None
    finally:
        isolate.close()
    if kind != "function":
        raise CompileError(_no_handler_message(kind))


@dataclass
class _Session:
    """One call's progress: the console lines read so far and the calls out to Python."""

    isolate: _Isolate
    call: Call | None
    memory_mb: int = DEFAULT_MEMORY_MB
    logs: list[str] = field(default_factory=list)
    calls: dict[asyncio.Task[tuple[bool, str]], int] = field(default_factory=dict)

    async def drive(self, source: str, event: dict[str, Any]) -> Outcome:
        """Load SOURCE, start the handler on EVENT and see it through to its outcome."""
        try:
            if self.memory_mb != DEFAULT_MEMORY_MB:  # the bootstrap's budget is the default's
                await self.isolate.host(f"__shipway_host.limit({self.memory_mb << 20})")
            await self.isolate.load(source)
        except _LoadError as e:
            return Outcome.failed(e.message, e.stack)
        allow = "true" if self.call is not None else "false"
        state = await self.isolate.host(
            f"__shipway_host.start({_literal(json.dumps(event))}, {allow})"
        )
        pause = 0.0
        while True:
            outcome = self._absorb(state)
            if outcome is not None:
                return outcome
            finished = await self._finished_calls(pause)
            if finished:
                state = await self.isolate.host(self._settle_code(finished))
                pause = 0.0
            else:
                state = await self.isolate.host("__shipway_host.poll()")
                pause = min(max(pause * 2, _FIRST_PAUSE), _MAX_PAUSE)

    def _absorb(self, state: str) -> Outcome | None:
        """Take in one poll's STATE: keep its log lines, start its calls; the outcome, once
        the handler has one."""
        try:
            parsed = json.loads(state)
            if "handler" in parsed:  # the top-level code left no function to call
                return Outcome.failed(_no_handler_message(str(parsed["handler"])))
            self.logs.extend(str(line) for line in parsed["logs"])
            for request in parsed["requests"]:
                self._start_call(int(request["id"]), str(request["name"]), request["params"])
            done = parsed["outcome"]
            if done is None:
                return None
            if done["ok"]:
                return Outcome(RunStatus.SUCCEEDED, result=json.loads(done["result"]))
            error = done["error"]
            return Outcome.failed(str(error["message"]), error["stack"])
        except (ValueError, KeyError, TypeError) as e:
            raise _Broken(f"unreadable state: {e}") from e

    def _start_call(self, request_id: int, name: str, params: str) -> None:
        assert self.call is not None, "the bootstrap lets no call through without a callback"
        task = asyncio.ensure_future(_invoke(self.call, name, params))
        self.calls[task] = request_id

    async def _finished_calls(self, pause: float) -> list[tuple[int, bool, str]]:
        """Wait up to PAUSE for calls out to Python; those that have finished."""
        if not self.calls:
            await asyncio.sleep(pause)
            return []
        done, _ = await asyncio.wait(self.calls, timeout=pause, return_when=asyncio.FIRST_COMPLETED)
        return [(self.calls.pop(task), *_answer(task)) for task in done]

    def _settle_code(self, finished: list[tuple[int, bool, str]]) -> str:
        settles = [
            f"__shipway_host.settle({request_id}, {'true' if ok else 'false'}, {_literal(text)});"
            for request_id, ok, text in finished
        ]
        return "\n".join([*settles, "__shipway_host.poll()"])

    def cancel_calls(self) -> None:
        for task in self.calls:
            task.cancel()
        self.calls.clear()


async def _invoke(call: Call, name: str, params: str) -> tuple[bool, str]:
    """Call out to Python: (True, the result as JSON) or (False, the error's message)."""
    try:
        result = await call(name, json.loads(params))
        return True, json.dumps(result)
    except Exception as e:  # any failure of the callee is the caller's JS error
        return False, str(e) or type(e).__name__


def _answer(task: asyncio.Task[tuple[bool, str]]) -> tuple[bool, str]:
    """What a finished call out to Python tells the handler, even if it was cancelled."""
    if task.cancelled():
        return False, "the call was cancelled"
    return task.result()


def _literal(text: str) -> str:
    """TEXT as a JS string literal (JSON's string syntax is a subset of JS's)."""
    return json.dumps(text)


class JsRuntime:
    """Runs JS functions, each call in a fresh isolate (see the module's docstring).

    MAX_WORKERS bounds the threads that make and close isolates; WARM is how many fresh
    isolates are kept ready; MAX_RUNNING bounds the calls in flight (more wait their turn).
    """

    def __init__(self, *, max_workers: int = 4, warm: int = 4, max_running: int = 32) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="shipway-js")
        self._warm = warm
        self._max_running = max_running
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: deque[_Isolate] = deque()
        self._making = 0
        self._running: asyncio.Semaphore | None = None
        self._chores: set[asyncio.Future[Any]] = set()

    async def run(
        self,
        source: str,
        event: dict[str, Any],
        *,
        timeout: float,
        memory_mb: int,
        call: Call | None = None,
    ) -> Outcome:
        """Call SOURCE's handler with EVENT in a fresh isolate; never raises for what the
        JS does. CALL serves `shipway.call` (None: it rejects)."""
        started = time.monotonic()
        self._bind()
        assert self._running is not None
        async with self._running:
            outcome = await self._run(source, event, timeout, memory_mb, call)
        outcome.duration = time.monotonic() - started
        return outcome

    async def _run(
        self,
        source: str,
        event: dict[str, Any],
        timeout: float,
        memory_mb: int,
        call: Call | None,
    ) -> Outcome:
        try:
            _check_size(source)
        except CompileError as e:
            return Outcome.failed(e.message)
        isolate = await self._take()
        session = _Session(isolate, call, memory_mb)
        try:
            isolate.limit_memory(memory_mb)
            outcome = await _bounded(session.drive(source, event), timeout)
        except _TimedOut:
            outcome = Outcome(
                RunStatus.TIMED_OUT,
                error={
                    "message": f"the function ran past its {timeout:g} s timeout",
                    "stack": None,
                },
            )
        except _OutOfMemory:
            outcome = Outcome.failed(f"the function exceeded its {memory_mb} MiB memory limit")
        except _Broken as e:
            outcome = Outcome.failed(f"the runtime lost track of the call: {e}")
        finally:
            session.cancel_calls()
            self._chore(self._close(isolate))
            self._top_up()
        outcome.logs = session.logs
        return outcome

    def _bind(self) -> None:
        """Tie the warm pool to the running loop; isolates await their work on one loop."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        for isolate in self._ready:
            self._chore(self._close(isolate))
        self._ready.clear()
        self._making = 0
        self._loop = loop
        self._running = asyncio.Semaphore(self._max_running)

    async def _take(self) -> _Isolate:
        """A fresh isolate, never used before."""
        return self._ready.popleft() if self._ready else await self._make()

    def _top_up(self) -> None:
        """Make isolates ahead of need, after a call rather than while it runs."""
        while self._making + len(self._ready) < self._warm:
            self._making += 1
            self._chore(self._make_warm())

    async def _make(self) -> _Isolate:
        loop = asyncio.get_running_loop()
        isolate = await loop.run_in_executor(self._pool, _Isolate, loop)
        try:
            await isolate.bootstrap()
        except BaseException:
            await self._close(isolate)
            raise
        return isolate

    async def _make_warm(self) -> None:
        loop = self._loop
        try:
            isolate = await self._make()
        except Exception:
            log.exception("could not make a fresh V8 isolate ahead of need")
            return
        finally:
            if self._loop is loop:
                self._making -= 1
        if self._loop is loop:
            self._ready.append(isolate)
        else:
            await self._close(isolate)

    async def _close(self, isolate: _Isolate) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, isolate.close)

    def _chore(self, work: Awaitable[Any]) -> None:
        """Run WORK in the background, keeping a reference until it is done."""
        future = asyncio.ensure_future(work)
        self._chores.add(future)
        future.add_done_callback(self._chores.discard)

    async def close(self) -> None:
        """Close the warm isolates and wait for background work; the runtime is then done."""
        while self._chores:
            await asyncio.gather(*self._chores, return_exceptions=True)
        for isolate in self._ready:
            isolate.close()
        self._ready.clear()
        self._pool.shutdown(wait=True)
