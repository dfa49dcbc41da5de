"""The warm Python worker: one process in the functions sandbox that forks a child per call.

PythonRuntime starts it as `python3 -I -S forkserver.py SOCKET PROCESSES`. It imports what calls
need, connects to the host's SOCKET and serves the frames of runtime.py's protocol until the
host hangs up. The parent never runs user code: each call is a fresh fork that runs exactly one
handler and exits, so module globals, imported modules and files of one call never reach the
next. The parent keeps the clock, captures the child's output, relays its messages, kills what
it leaves behind and wipes the sandbox's scratch places once no call is running.

Only the standard library is used: the sandbox sees the host's /usr, not shipway. The host
imports this module too, for the framing (encode, read_frame) both sides share.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import gc
import importlib
import inspect
import json
import linecache
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
import threading
import traceback
import types
from typing import Any, NoReturn, TextIO

#: Modules the warm parent imports besides its own, so that calls find them loaded.
PRELOADED = (
    "base64",
    "collections",
    "datetime",
    "decimal",
    "functools",
    "hashlib",
    "itertools",
    "math",
    "random",
    "re",
    "string",
    "time",
    "typing",
    "urllib.parse",
    "uuid",
)

#: The name user code is compiled under, in tracebacks and in linecache.
HANDLER_FILE = "handler.py"
#: A call's output kept for its logs: lines, and bytes of text.
MAX_LOG_LINES = 1000
MAX_LOG_BYTES = 64 * 1024
#: The largest message a call may send (its result, or a call of another function).
MAX_MESSAGE = 8 * 2**20
#: The largest header line of a frame.
MAX_HEADER = 64 * 1024
#: Seconds to wait, once a call's process has ended, for the last of its output.
DRAIN_SECONDS = 2.0
#: Seconds between sweeps for processes an ended call left behind, while there are any.
SWEEP_SECONDS = 0.01
#: The fd a call's child talks to the worker on (its result, and calls of other functions).
CHANNEL_FD = 3
#: Places a call may write besides its own tmp dir; wiped whenever no call is running.
SCRATCH = ("/tmp", "/dev/shm", "/workspace")

_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


# -- framing, shared with the host ------------------------------------------------------------


def encode(header: dict[str, Any], body: bytes = b"") -> bytes:
    """One frame: a JSON header line, then SIZE raw bytes of body when there is one."""
    if body:
        header = {**header, "size": len(body)}
    return json.dumps(header).encode() + b"\n" + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes] | None:
    """The next frame, or None once the other side has hung up."""
    try:
        line = await reader.readline()
        if not line:
            return None
        header = json.loads(line)
        if not isinstance(header, dict):
            return None
        size = int(header.get("size", 0))
        body = await reader.readexactly(size) if size > 0 else b""
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, TypeError):
        return None  # a frame that breaks the protocol ends the connection like a hang-up
    return header, body


# -- the parent ---------------------------------------------------------------------------------


class Output:
    """A call's merged stdout and stderr as log lines, cut at MAX_LOG_LINES or MAX_LOG_BYTES."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.size = 0
        self.cut = False
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        if self.cut:
            return
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        for line in lines:
            self._add(line)
        if len(self._pending) > MAX_LOG_BYTES:
            self._add(self._pending)
            self._pending = b""

    def close(self) -> None:
        if self._pending:
            self._add(self._pending)
            self._pending = b""

    def _add(self, raw: bytes) -> None:
        if self.cut:
            return
        if len(self.lines) >= MAX_LOG_LINES or self.size + len(raw) > MAX_LOG_BYTES:
            self.cut = True
            self.lines.append(
                f"[output cut: a call keeps {MAX_LOG_LINES} lines or {MAX_LOG_BYTES} bytes]"
            )
            return
        self.size += len(raw)
        self.lines.append(raw.decode("utf-8", "replace").removesuffix("\r"))


@dataclasses.dataclass
class Call:
    """One call being served: its child, the pipes to it, and how it ended."""

    id: int
    pid: int
    tmp: str
    output_fd: int
    channel: socket.socket
    exited: asyncio.Future[int]
    output: Output = dataclasses.field(default_factory=Output)
    output_done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    writer: asyncio.StreamWriter | None = None
    timer: asyncio.TimerHandle | None = None
    timed_out: bool = False

    def kill(self) -> None:
        """SIGKILL the child and everything in its process group, unless it is already reaped."""
        if not self.exited.done():
            _kill(self.pid)
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)


class Worker:
    """The parent: reads frames from the host, forks a child per call, reports how each ended."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, processes: int
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.processes = processes
        self.loop = asyncio.get_running_loop()
        self.calls: dict[int, Call] = {}
        self.by_pid: dict[int, Call] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.sweeping = False
        #: The scratch places' modes, put back when they are wiped: a call may change them.
        self.modes = {place: os.stat(place).st_mode & 0o7777 for place in SCRATCH}

    async def serve(self) -> None:
        self.loop.add_signal_handler(signal.SIGCHLD, self._reap)
        while frame := await read_frame(self.reader):
            header, body = frame
            op, call = header.get("op"), self.calls.get(header.get("id", -1))
            if op == "run":
                try:
                    self._start(header, body)
                except OSError as e:  # no room left for one more process, or in /tmp
                    failed = {"op": "end", "id": header["id"], "error": f"cannot start: {e}"}
                    self.writer.write(encode(failed))
            elif op == "reply" and call is not None and call.writer is not None:
                call.writer.write(body + b"\n")
            elif op == "cancel" and call is not None:
                call.kill()

    def _start(self, header: dict[str, Any], body: bytes) -> None:
        call_id = int(header["id"])
        tmp = f"/tmp/call-{call_id}-{os.urandom(8).hex()}"
        os.mkdir(tmp, 0o700)
        output_r, output_w = os.pipe()
        ours, theirs = socket.socketpair()
        try:
            pid = os.fork()
        except OSError:
            for fd in (output_r, output_w):
                os.close(fd)
            ours.close()
            theirs.close()
            _remove(tmp)
            raise
        if pid == 0:
            _child(header, body, tmp, output_w, theirs.fileno(), self.processes)
        os.close(output_w)
        theirs.close()
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        os.set_blocking(output_r, False)
        call = Call(call_id, pid, tmp, output_r, ours, self.loop.create_future())
        self.calls[call_id] = call
        self.by_pid[pid] = call
        call.timer = self.loop.call_later(float(header["timeout"]), self._expire, call)
        self.loop.add_reader(output_r, self._read_output, call)
        task = asyncio.create_task(self._serve(call))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, call: Call) -> None:
        """Relay the child's messages until it has ended, then report the end to the host."""
        end: dict[str, Any] = {"op": "end", "id": call.id}
        try:
            code = await self._watch(call)
            end |= {
                "exit": code if code >= 0 else None,
                "signal": -code if code < 0 else None,
                "timed_out": call.timed_out,
            }
            logs = json.dumps(call.output.lines).encode()
        except Exception as e:  # the worker's fault, not the call's: say so, and serve on
            call.kill()
            end["error"] = f"the Python worker failed the call: {e!r}"
            logs = b""
        finally:
            self._close(call)
        self.writer.write(encode(end, logs))
        if not self.calls:
            _wipe_scratch(self.modes)

    async def _watch(self, call: Call) -> int:
        """The child's exit code (negative: the signal) once it and its output have ended."""
        reader, call.writer = await asyncio.open_unix_connection(
            sock=call.channel, limit=MAX_MESSAGE
        )
        relay = asyncio.create_task(self._relay(call, reader))
        try:
            code = await call.exited
            if call.timer is not None:
                call.timer.cancel()
            drained = asyncio.ensure_future(call.output_done.wait())
            await asyncio.wait({drained, relay}, timeout=DRAIN_SECONDS)
            drained.cancel()
        finally:
            relay.cancel()
        call.output.close()
        return code

    async def _relay(self, call: Call, reader: asyncio.StreamReader) -> None:
        """Forward each line the child writes on its channel to the host, as an opaque body."""
        try:
            while line := await reader.readline():
                if line.endswith(b"\n"):
                    self.writer.write(encode({"op": "child", "id": call.id}, line[:-1]))
        except ValueError:  # a line over MAX_MESSAGE: only a broken or hostile call sends one
            call.kill()

    def _read_output(self, call: Call) -> None:
        try:
            chunk = os.read(call.output_fd, 65536)
        except BlockingIOError:
            return
        if chunk:
            call.output.feed(chunk)
            return
        self.loop.remove_reader(call.output_fd)
        call.output_done.set()

    def _expire(self, call: Call) -> None:
        call.timed_out = True
        call.kill()

    def _reap(self) -> None:
        """Collect ended children: a call's child ends its call and takes its group along."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            call = self.by_pid.pop(pid, None)
            if call is not None:
                # The group's id stays reserved while it has members, so this is still theirs.
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
                call.exited.set_result(os.waitstatus_to_exitcode(status))
                self._sweep()

    def _sweep(self) -> None:
        """Kill the processes ended calls left behind: as a subreaper, the worker inherits them
        (and their children in turn, so look again until there are none)."""
        strays = [pid for pid in _children() if pid not in self.by_pid]
        for pid in strays:
            _kill(pid)
        if strays and not self.sweeping:
            self.sweeping = True
            self.loop.call_later(SWEEP_SECONDS, self._sweep_again)

    def _sweep_again(self) -> None:
        self.sweeping = False
        self._sweep()

    def _close(self, call: Call) -> None:
        del self.calls[call.id]
        if call.timer is not None:
            call.timer.cancel()
        if not call.output_done.is_set():
            self.loop.remove_reader(call.output_fd)
        os.close(call.output_fd)
        if call.writer is not None:
            call.writer.close()
        else:
            call.channel.close()
        _remove(call.tmp)


def _children() -> list[int]:
    pids: list[int] = []
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/children") as f:
            pids += [int(pid) for pid in f.read().split()]
    return pids


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _remove(path: str) -> None:
    """Delete a tree a call wrote, even where it took its own permissions away."""

    def allow(_: Any, failed: str, __: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(failed), 0o700)
            os.chmod(failed, 0o700)
        with contextlib.suppress(OSError):
            if os.path.isdir(failed) and not os.path.islink(failed):
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, onerror=allow)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _wipe_scratch(modes: dict[str, int]) -> None:
    """Empty the places any call could write to, so nothing it left is there for the next."""
    for place, mode in modes.items():
        with contextlib.suppress(OSError):
            os.chmod(place, mode)
        with contextlib.suppress(OSError), os.scandir(place) as entries:
            for entry in entries:
                _remove(entry.path)


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


# -- the child ------------------------------------------------------------------------------------


class CallError(Exception):
    """Raised in a handler when shipway.call cannot call the other function, or it failed."""


class Channel:
    """The child's end of its channel: sends its result, and calls other functions through it."""

    def __init__(self, calls: bool) -> None:
        self.sock = socket.socket(fileno=CHANNEL_FD)
        self.lines = self.sock.makefile("rb")
        self.calls = calls
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(message, allow_nan=False).encode() + b"\n")

    def call(self, name: str, params: Any = None) -> Any:
        """Run another function with PARAMS and return its result: shipway.call for handlers."""
        if not self.calls:
            raise CallError("calling other functions is not available here")
        if not isinstance(name, str):
            raise TypeError("shipway.call: the function's name must be a string")
        request = json.dumps({"op": "call", "name": name, "params": params}, allow_nan=False)
        if len(request) > MAX_MESSAGE:
            raise CallError(f"shipway.call: params larger than {MAX_MESSAGE // 2**20} MiB")
        with self.lock:
            self.sock.sendall(request.encode() + b"\n")
            line = self.lines.readline()
        if not line:
            raise CallError(f"the call of {name} got no answer")
        reply = json.loads(line)
        if reply.get("ok"):
            return reply.get("result")
        raise CallError(str(reply.get("error")))


def _child(
    header: dict[str, Any], body: bytes, tmp: str, output: int, channel: int, processes: int
) -> NoReturn:
    """Run one call in this fresh fork and exit; never returns into the parent's event loop."""
    code = 0
    try:
        _isolate(header, tmp, output, channel, processes)
        code = _run_call(header, body)
    except BaseException:
        code = 70
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _isolate(header: dict[str, Any], tmp: str, output: int, channel: int, processes: int) -> None:
    """Leave the parent's world: its signals, fds and limits; take the call's own."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    if channel != CHANNEL_FD:
        os.dup2(channel, CHANNEL_FD, inheritable=False)
    os.set_inheritable(CHANNEL_FD, False)
    os.closerange(CHANNEL_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    asyncio.set_event_loop_policy(None)
    # Orphans of the call stay below it (and so in reach) while it runs.
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()
    memory = mapped + int(header["memory_mb"]) * 2**20
    _lower(resource.RLIMIT_AS, memory)
    _lower(resource.RLIMIT_NPROC, processes)
    os.chdir(tmp)
    os.environ.update({"TMPDIR": tmp, "HOME": tmp})
    tempfile.tempdir = None
    sys.argv = [HANDLER_FILE]
    sys.stdout = _console(1)
    sys.stderr = _console(2)


def _console(fd: int) -> TextIO:
    """A line-buffered text stream on FD, so each line reaches the logs as it is printed."""
    return open(fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)


def _lower(which: int, value: int) -> None:
    """Set soft and hard limit, so the call cannot raise it again."""
    hard = resource.getrlimit(which)[1]
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _run_call(header: dict[str, Any], body: bytes) -> int:
    """Load the code, call its handler, send the result or error; the child's exit code."""
    me = os.getpid()
    channel = Channel(bool(header.get("calls")))
    reserve: bytearray | None = bytearray(2**20)  # freed for reporting a MemoryError
    try:
        request = json.loads(body)
        os.environ.update(request.get("env") or {})
        handler = _load(request["source"], channel)
        result = handler(request.get("event"))
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
    except BaseException as e:
        reserve = None
        if os.getpid() != me:  # a process the handler forked: only the call's own reports
            os._exit(0)
        channel.send({"op": "result", "ok": False, "error": _describe(e)})
        return 1
    if os.getpid() != me:
        os._exit(0)
    del reserve
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        message = json.dumps({"op": "result", "ok": True, "result": result}, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        problem = f"the handler's return value is not JSON: {_text(e)}"
    else:
        if len(message) <= MAX_MESSAGE:
            channel.sock.sendall(message.encode() + b"\n")
            return 0
        problem = f"the handler's return value is larger than {MAX_MESSAGE // 2**20} MiB as JSON"
    error = {"type": "ValueError", "message": problem, "stack": None}
    channel.send({"op": "result", "ok": False, "error": error})
    return 1


def _load(source: str, channel: Channel) -> Any:
    """Run the code as module `handler`, with `shipway` importable, and return its handler."""
    lines = source.splitlines(keepends=True)
    linecache.cache[HANDLER_FILE] = (len(source), None, lines, HANDLER_FILE)
    api = types.ModuleType("shipway", "What a function's code can ask of shipway.")
    api.call = channel.call  # type: ignore[attr-defined]
    api.CallError = CallError  # type: ignore[attr-defined]
    sys.modules["shipway"] = api
    module = types.ModuleType("handler")
    module.__file__ = HANDLER_FILE
    module.shipway = api  # type: ignore[attr-defined]
    sys.modules["handler"] = module
    exec(compile(source, HANDLER_FILE, "exec"), module.__dict__)
    handler = module.__dict__.get("handler")
    if not callable(handler):
        raise TypeError("the code defines no function named handler")
    return handler


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _describe(error: BaseException) -> dict[str, Any]:
    """{"type", "message", "stack"} of an exception, its traceback starting at the user's code."""
    text = _text(error)
    message = f"{type(error).__name__}: {text}" if text else type(error).__name__
    try:
        summary = traceback.TracebackException.from_exception(error)
        _trim(summary)
        stack: str | None = "".join(summary.format())
    except (MemoryError, RecursionError):
        stack = None
    return {"type": type(error).__name__, "message": message, "stack": stack}


def _text(error: BaseException) -> str:
    """str(ERROR), which the user's code defines and which may itself fail."""
    try:
        return str(error)
    except Exception:
        return "(its message cannot be shown)"


def _trim(summary: traceback.TracebackException) -> None:
    """Drop the worker's own frames in front of the first frame of the user's code."""
    seen: set[int] = set()
    current: traceback.TracebackException | None = summary
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = list(current.stack)
        first = next((i for i, f in enumerate(frames) if f.filename == HANDLER_FILE), len(frames))
        current.stack = traceback.StackSummary.from_list(frames[first:])
        current = current.__cause__ or current.__context__


# -- start ----------------------------------------------------------------------------------------


async def _main(path: str, processes: int) -> None:
    reader, writer = await asyncio.open_unix_connection(path, limit=MAX_HEADER)
    await Worker(reader, writer, processes).serve()


def main() -> None:
    """Start the worker: unreadable to the calls it forks, and the reaper of their orphans."""
    path, processes = sys.argv[1], int(sys.argv[2])
    # Calls run as the same uid: not dumpable, the worker's memory and fds are out of their reach.
    _prctl(_PR_SET_DUMPABLE, 0)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    os.chdir("/")
    _warm_up()
    gc.freeze()
    asyncio.run(_main(path, processes))


def _warm_up() -> None:
    """Do once what every call would otherwise do first: load the lazy parts it uses."""
    for name in PRELOADED:
        importlib.import_module(name)
    try:
        raise ValueError("warm-up")
    except ValueError as e:
        _describe(e)
    json.loads(json.dumps({"warm": [1.5, "up", None]}))
    compile("def handler(event):\n    return event\n", HANDLER_FILE, "exec")


if __name__ == "__main__":
    main()
