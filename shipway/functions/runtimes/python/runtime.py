"""Python functions: checked on deploy, each call run in a fresh fork of one warm worker.

The worker (forkserver.py) is one `python3 -I -S` process in one sandbox: no network at all, the
host's toolchain read-only, a private /tmp, an unprivileged uid, memory and process limits and
no wall clock. For each call it forks a child that runs exactly that call and exits; the worker
itself never runs user code. A fork of the warm process costs a few milliseconds, where a new
sandbox and interpreter would cost a hundred.

How the host and the worker talk
    The host listens on a unix socket in a directory of its own, mounted read-only into the
    sandbox at /run/fn, and starts the worker, which connects. Then the host stops listening
    and removes the socket: nothing that runs in the sandbox later can connect, nor replace
    the socket, since the directory is read-only. Over that one connection go frames, each a
    JSON header line and, where it has one, `size` raw bytes of body:

    host → worker  run {id, timeout, memory_mb, calls} + body {source, event, env}
                   reply {id} + body: the answer to the call's shipway.call, one JSON line
                   cancel {id}
    worker → host  child {id} + body: one line the call's child wrote, passed on unread: its
                   result {"op": "result", "ok", "result" | "error"} or a shipway.call
                   {"op": "call", "name", "params"}
                   end {id, exit, signal, timed_out} + body: its log lines as a JSON list, once
                   the child is gone and its output read; end {id, error} when the worker
                   could not run the call

    The worker relays what a child writes as an opaque body whose length it states, so a
    child cannot forge frames for other calls, and only the host parses it.

What a call cannot do
    See or change the next call: each is a fresh fork, with its own tmp dir (TMPDIR, HOME, the
    cwd) that is removed when it ends, and /tmp, /dev/shm and /workspace are emptied whenever
    no call is running. Outlive its call: the worker kills the call's process group and, as a
    subreaper, every orphan it left. Take more than memory_mb (RLIMIT_AS over what the fork
    starts with: a MemoryError) or all the worker's processes (RLIMIT_NPROC leaves
    RESERVED_PROCESSES for the worker). Read the worker's memory or fds, or another call's:
    none of them is dumpable. Reach a network, the host's files, or write outside the scratch
    places above.

    Calls that run at the same time do share the worker's uid, so one could signal another (or
    the worker, which the runtime then restarts) or look into its tmp dir while both run.
    Code that must not share that much needs a PythonRuntime of its own: each function has
    one (pool.py).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import itertools
import json
import logging
import math
import os
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shipway.errors import ServiceError, ValidationError
from shipway.functions.outcome import Call, CompileError, Outcome, RunStatus
from shipway.functions.runtimes.python import forkserver
from shipway.functions.runtimes.python.forkserver import (
    HANDLER_FILE,
    MAX_HEADER,
    encode,
    read_frame,
)
from shipway.sandbox import Limits, Mount, SandboxError, SandboxResult, SandboxSpec
from shipway.sandbox import run as run_sandbox

log = logging.getLogger(__name__)

#: The interpreter the worker runs on: the host's, which the sandbox sees through its /usr.
PYTHON = "/usr/bin/python3"
#: The largest source a function may have, in bytes.
MAX_SOURCE = 2**20
#: The largest call (source, event and env as JSON) the host sends, in bytes.
MAX_REQUEST = 16 * 2**20
#: What the one worker sandbox may use, for all the calls it runs at once.
WORKER_LIMITS = Limits(memory_mb=4096, processes=1024, wall_seconds=math.inf)
#: Processes no call may take, so that the worker can still fork the calls after a fork bomb.
RESERVED_PROCESSES = 64
#: Calls one runtime runs at once; more wait for a turn.
MAX_CALLS = 64
#: Where the host's directory (the socket, the worker's code) is seen in the sandbox.
WORKER_DIR = "/run/fn"
SOCKET_NAME = "host.sock"
#: The worker's code there: a copy of forkserver.py, which the sandbox runs as a script.
WORKER_FILE = "forkserver.py"
#: Seconds the worker has to start and connect.
START_SECONDS = 30.0
#: Seconds past a call's timeout (and the worker's drain) before the host stops waiting for
#: the worker's word on it, and starts a new worker.
GRACE_SECONDS = 10.0
#: Lines of the worker's own output kept to explain a failed start.
TAIL_LINES = 20
#: The error of a call whose worker died under it.
LOST = "the Python worker stopped during the call"


class WorkerUnavailable(ServiceError):
    """Raised when the Python worker cannot be started."""


def check(source: str) -> None:
    """Raise CompileError when SOURCE would not load: a syntax error (with its line), no
    top-level handler, or more than MAX_SOURCE bytes. It is compiled, never run."""
    if len(source.encode(errors="surrogatepass")) > MAX_SOURCE:
        raise CompileError(f"the code is larger than {MAX_SOURCE // 2**20} MiB")
    try:
        tree = ast.parse(source, HANDLER_FILE)
        compile(tree, HANDLER_FILE, "exec")
    except SyntaxError as e:
        where = f" at line {e.lineno}" if e.lineno else ""
        raise CompileError(f"{type(e).__name__}: {e.msg}{where}", line=e.lineno) from e
    except (ValueError, RecursionError, MemoryError) as e:
        raise CompileError(f"the code cannot be compiled: {e}") from e
    if not any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "handler"
        for node in tree.body
    ):
        raise CompileError("the code defines no top-level `def handler(event)`")


class PythonRuntime:
    """Runs Python handlers, each call in a fresh fork of one warm, sandboxed worker that is
    started on first use and started again when it dies."""

    def __init__(
        self,
        scratch: Path | None = None,
        *,
        limits: Limits = WORKER_LIMITS,
        max_calls: int = MAX_CALLS,
    ) -> None:
        if limits.processes <= RESERVED_PROCESSES:
            raise ValidationError(f"the Python worker needs over {RESERVED_PROCESSES} processes")
        self.limits = replace(limits, wall_seconds=math.inf)
        self._scratch = scratch
        self._made_scratch: Path | None = None
        self._turns = asyncio.Semaphore(max_calls)
        self._starting = asyncio.Lock()
        self._worker: _Worker | None = None
        self._closed = False

    async def start(self) -> None:
        """Start the worker now rather than on the first call (and again after close)."""
        self._closed = False
        await self._ready()

    async def close(self) -> None:
        """Stop the worker, killing the calls it runs; calls after this raise
        WorkerUnavailable until the next start()."""
        self._closed = True
        async with self._starting:
            worker, self._worker = self._worker, None
            if worker is not None:
                await worker.stop()
        if self._made_scratch is not None:
            shutil.rmtree(self._made_scratch, ignore_errors=True)
            self._made_scratch = None

    async def run(
        self,
        source: str,
        event: dict[str, Any],
        *,
        timeout: float,
        memory_mb: int,
        call: Call | None = None,
        env: dict[str, str] | None = None,
    ) -> Outcome:
        """Call SOURCE's handler with EVENT, within TIMEOUT seconds and MEMORY_MB (at most the
        worker's); CALL runs the functions it calls (shipway.call), and ENV is added to its
        os.environ."""
        if not timeout > 0 or math.isinf(timeout) or memory_mb <= 0:
            raise ValidationError("a call needs a finite timeout and memory_mb above 0")
        memory_mb = min(memory_mb, self.limits.memory_mb)
        request = {"source": source, "event": event, "env": env or {}}
        try:
            payload = json.dumps(request, allow_nan=False).encode(errors="surrogatepass")
        except (TypeError, ValueError) as e:
            raise ValidationError(f"a call's event and env must be JSON: {e}") from e
        if len(payload) > MAX_REQUEST:
            raise ValidationError(f"a call's event is larger than {MAX_REQUEST // 2**20} MiB")
        async with self._turns:
            for _ in range(2):
                worker = await self._ready()
                outcome = await worker.run(payload, timeout=timeout, memory_mb=memory_mb, call=call)
                if outcome is not None:
                    return outcome
        # The worker died twice with the call and nothing heard of it: the call may be why.
        return Outcome.failed(LOST)

    async def _ready(self) -> _Worker:
        worker = self._worker
        if worker is not None and worker.alive:
            return worker
        async with self._starting:
            if self._closed:
                raise WorkerUnavailable("the Python runtime is closed")
            if self._worker is not None and not self._worker.alive:
                await self._worker.stop()
                self._worker = None
            if self._worker is None:
                self._worker = await _Worker.spawn(self._scratch_dir(), self.limits)
            return self._worker

    def _scratch_dir(self) -> Path:
        if self._scratch is not None:
            return self._scratch
        if self._made_scratch is None:
            self._made_scratch = Path(tempfile.mkdtemp(prefix="shipway-python-"))
        return self._made_scratch


@dataclass
class _Pending:
    """A call the worker runs: what the host has heard of it so far."""

    call: Call | None
    end: asyncio.Future[dict[str, Any] | None]
    result: dict[str, Any] | None = None
    answering: set[asyncio.Task[None]] = field(default_factory=set)
    #: Whether the child has said anything: a call lost without a word is safe to run again.
    heard: bool = False


class _Worker:
    """One running worker: its sandbox, and the connection the calls go over."""

    def __init__(
        self,
        sandbox: asyncio.Task[SandboxResult],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.sandbox = sandbox
        self.reader = reader
        self.writer = writer
        self.calls: dict[int, _Pending] = {}
        self.ids = itertools.count(1)
        self.broken = False
        self.listening = asyncio.create_task(self._receive())
        sandbox.add_done_callback(_report)

    @classmethod
    async def spawn(cls, scratch: Path, limits: Limits) -> _Worker:
        """Start the worker's sandbox and wait until the worker has connected."""
        shared, workspace = scratch / "fn", scratch / "workspace"
        await asyncio.to_thread(_prepare, shared, workspace)
        tail: deque[str] = deque(maxlen=TAIL_LINES)

        def said(line: str) -> None:
            tail.append(line)
            log.warning("python worker: %s", line)

        spec = SandboxSpec(
            argv=[
                PYTHON,
                "-I",
                "-S",
                f"{WORKER_DIR}/{WORKER_FILE}",
                f"{WORKER_DIR}/{SOCKET_NAME}",
                str(limits.processes - RESERVED_PROCESSES),
            ],
            workspace=workspace,
            mounts=[Mount(shared, WORKER_DIR)],
            network=False,
            limits=limits,
            hostname="functions",
        )
        listener = _bind(shared / SOCKET_NAME)
        sandbox = asyncio.create_task(run_sandbox(spec, said))
        accepting = asyncio.ensure_future(asyncio.get_running_loop().sock_accept(listener))
        try:
            await asyncio.wait(
                {sandbox, accepting}, timeout=START_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            if not accepting.done():
                raise WorkerUnavailable(f"the Python worker did not start: {_why(sandbox, tail)}")
            conn, _ = accepting.result()
            reader, writer = await asyncio.open_unix_connection(sock=conn, limit=MAX_HEADER)
        except BaseException:
            accepting.cancel()
            await _stop(sandbox)
            raise
        finally:
            listener.close()
            (shared / SOCKET_NAME).unlink(missing_ok=True)
        return cls(sandbox, reader, writer)

    @property
    def alive(self) -> bool:
        return not (self.broken or self.sandbox.done() or self.listening.done())

    async def run(
        self, payload: bytes, *, timeout: float, memory_mb: int, call: Call | None
    ) -> Outcome | None:
        """The call's outcome; None if the worker died before a word of it was heard (the
        call may not even have reached it), so that it can go to a new worker."""
        call_id = next(self.ids)
        pending = _Pending(call, asyncio.get_running_loop().create_future())
        self.calls[call_id] = pending
        if self.listening.done():
            pending.end.set_result(None)
        header = {
            "op": "run",
            "id": call_id,
            "timeout": timeout,
            "memory_mb": memory_mb,
            "calls": call is not None,
        }
        started = time.monotonic()
        hung = False
        try:
            self.writer.write(encode(header, payload))
            patience = timeout + forkserver.DRAIN_SECONDS + GRACE_SECONDS
            end = await asyncio.wait_for(asyncio.shield(pending.end), patience)
        except TimeoutError:
            log.warning("python worker silent past a call's %g s timeout: restarting it", timeout)
            hung, end = True, None
            self.broken = True
            self.sandbox.cancel()
        except asyncio.CancelledError:
            self._send(encode({"op": "cancel", "id": call_id}))
            raise
        finally:
            del self.calls[call_id]
            for task in pending.answering:
                task.cancel()
        if end is None and not hung and not pending.heard:
            return None
        duration = time.monotonic() - started
        return _outcome(pending.result, end, hung, timeout, memory_mb, duration)

    async def stop(self) -> None:
        """Kill the worker's sandbox and everything in it."""
        self.writer.close()
        await _stop(self.sandbox)
        self.listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.listening

    async def _receive(self) -> None:
        """Take in the worker's frames until it hangs up; then every call waiting has ended."""
        try:
            while frame := await read_frame(self.reader):
                header, body = frame
                pending = self.calls.get(header.get("id", 0))
                if pending is None:
                    continue
                if header.get("op") == "end" and not pending.end.done():
                    pending.end.set_result({**header, "logs": _json(body, [])})
                elif header.get("op") == "child":
                    self._heard(header["id"], pending, body)
        finally:
            for pending in self.calls.values():
                if not pending.end.done():
                    pending.end.set_result(None)

    def _heard(self, call_id: int, pending: _Pending, body: bytes) -> None:
        """A line from the call's child: its result (the first one counts) or a call."""
        pending.heard = True
        message = _json(body, {})
        if not isinstance(message, dict):
            return
        if message.get("op") == "result" and pending.result is None:
            pending.result = message
        elif message.get("op") == "call" and not pending.answering:
            # shipway.call waits for each answer; a call that does not is ignored.
            task = asyncio.create_task(self._answer(call_id, pending, message))
            pending.answering.add(task)
            task.add_done_callback(pending.answering.discard)

    async def _answer(self, call_id: int, pending: _Pending, message: dict[str, Any]) -> None:
        """Run the other function a handler called, and send it the result or the error."""
        name, params = message.get("name"), message.get("params")
        if pending.call is None:
            reply: dict[str, Any] = {
                "ok": False,
                "error": "calling other functions is not available here",
            }
        elif not isinstance(name, str):
            reply = {"ok": False, "error": "shipway.call needs the function's name"}
        else:
            try:
                reply = {"ok": True, "result": await pending.call(name, params)}
            except Exception as e:
                reply = {"ok": False, "error": str(e) or type(e).__name__}
        try:
            body = json.dumps(reply, allow_nan=False)
        except (TypeError, ValueError) as e:
            body = json.dumps({"ok": False, "error": f"the result of {name} is not JSON: {e}"})
        self._send(encode({"op": "reply", "id": call_id}, body.encode(errors="surrogatepass")))

    def _send(self, frame: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame)


def _json(body: bytes, default: Any) -> Any:
    """BODY parsed, or DEFAULT when there is none or it is not JSON."""
    try:
        return json.loads(body) if body else default
    except ValueError:
        return default


def _prepare(shared: Path, workspace: Path) -> None:
    """The worker's read-only directory with its code, and an empty workspace."""
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    shared.mkdir(parents=True, exist_ok=True)
    shared.chmod(0o755)
    code = shared / WORKER_FILE
    code.write_bytes(Path(forkserver.__file__).read_bytes())
    code.chmod(0o644)


def _bind(path: Path) -> socket.socket:
    """A listening unix socket at PATH, open to the sandbox's uid, however long PATH is."""
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # Through the directory's fd: a socket's path may not be longer than 107 bytes.
        listener.bind(f"/proc/self/fd/{directory}/{path.name}")
        path.chmod(0o666)
        listener.listen(1)
        listener.setblocking(False)
    except BaseException:
        listener.close()
        raise
    finally:
        os.close(directory)
    return listener


def _report(sandbox: asyncio.Task[SandboxResult]) -> None:
    """Log a worker that ended without being stopped: the next call starts a new one."""
    if sandbox.cancelled():
        return
    error = sandbox.exception()
    if error is not None:
        log.warning("python worker failed: %s", error)
    else:
        result = sandbox.result()
        log.warning("python worker ended: %s", result.reason or f"exit code {result.exit_code}")


async def _stop(sandbox: asyncio.Task[SandboxResult]) -> None:
    sandbox.cancel()
    with contextlib.suppress(asyncio.CancelledError, SandboxError):
        await sandbox


def _why(sandbox: asyncio.Task[SandboxResult], tail: deque[str]) -> str:
    """Why the worker did not connect, with what it printed."""
    if not sandbox.done():
        why = f"it did not connect within {START_SECONDS:g} s"
    elif sandbox.cancelled():
        why = "it was stopped"
    elif (error := sandbox.exception()) is not None:
        why = str(error)
    else:
        result = sandbox.result()
        why = result.reason or f"it exited with code {result.exit_code}"
    output = "\n".join(tail)
    return f"{why}; its last output:\n{output}" if output else why


def _outcome(
    result: dict[str, Any] | None,
    end: dict[str, Any] | None,
    hung: bool,
    timeout: float,
    memory_mb: int,
    duration: float,
) -> Outcome:
    """The call's outcome from the child's result, if it sent one, and the worker's end."""
    logs = end.get("logs") if end is not None else None
    lines = [line for line in logs if isinstance(line, str)] if isinstance(logs, list) else []

    def ended(status: RunStatus, message: str) -> Outcome:
        error = {"message": message, "stack": None}
        return Outcome(status, error=error, logs=lines, duration=duration)

    if result is not None:
        if result.get("ok"):
            return Outcome(
                RunStatus.SUCCEEDED, result=result.get("result"), logs=lines, duration=duration
            )
        error = _error(result.get("error"), memory_mb)
        return Outcome(RunStatus.FAILED, error=error, logs=lines, duration=duration)
    timed_out = f"the function ran past its {timeout:g} s timeout"
    if end is None:
        if hung:
            return ended(RunStatus.TIMED_OUT, timed_out)
        return ended(RunStatus.FAILED, LOST)
    if end.get("error"):
        return ended(RunStatus.FAILED, str(end["error"]))
    if end.get("timed_out"):
        return ended(RunStatus.TIMED_OUT, timed_out)
    return ended(RunStatus.FAILED, _exit(end, memory_mb))


def _error(raw: Any, memory_mb: int) -> dict[str, Any]:
    """The error a handler raised, as Outcome.error; a MemoryError names the limit."""
    raw = raw if isinstance(raw, dict) else {}
    message, stack = raw.get("message"), raw.get("stack")
    if raw.get("type") == "MemoryError":
        message = f"MemoryError: the function ran past its {memory_mb} MiB memory limit"
    return {
        "message": message if isinstance(message, str) else "the function failed",
        "stack": stack if isinstance(stack, str) else None,
    }


def _exit(end: dict[str, Any], memory_mb: int) -> str:
    """Why the child ended without a result."""
    number = end.get("signal")
    if isinstance(number, int):
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        if number in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS):
            return (
                f"the function's process was killed by {name}; "
                f"it may have run past its {memory_mb} MiB memory limit"
            )
        return f"the function's process was killed by {name}"
    return f"the function's process exited with code {end.get('exit')} before returning"
