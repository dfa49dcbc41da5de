"""Child processes for async code, started the same way on every event loop.

A child gets only the fds it is handed. `asyncio.create_subprocess_exec` on uvloop (which the
node runs) hands a child every inheritable fd of shipway, and stray copies of its own pipes:
a sandbox could receive one, and a daemon that podman leaves behind kept podman's output
open, so its caller never saw the end of it. So a child is started by `subprocess.Popen`,
which closes all other fds, and waited on through a pidfd that the loop watches (no thread,
no SIGCHLD handler). Its pipes are made here, and each end is closed exactly once whatever
the loop (see `_pipe`). The object it returns does what `asyncio.subprocess.Process` does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from typing import IO, Any

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STDOUT = subprocess.STDOUT
#: asyncio's StreamReader limit: the longest line that readline() and iteration accept.
LINE_LIMIT = 64 * 1024


class Child:
    """A started child: its pipes as streams, its exit as an awaitable."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout: asyncio.StreamReader | None = None
        self.stderr: asyncio.StreamReader | None = None
        self._exited = asyncio.get_running_loop().create_future()

    @property
    def returncode(self) -> int | None:
        """The exit code, negative for a signal, once the child has ended and been reaped."""
        return self._popen.returncode

    async def wait(self) -> int:
        """The exit code, once the child ends."""
        return await asyncio.shield(self._exited)

    async def communicate(self, input: bytes | None = None) -> tuple[bytes, bytes]:
        """Send INPUT (then end the input), read the output and errors to their end (b"" for
        one that is not a pipe), and wait for the exit."""
        feeding = asyncio.ensure_future(self._feed(input))
        out, err = await asyncio.gather(_read(self.stdout), _read(self.stderr))
        await feeding
        await self.wait()
        return out, err

    def send_signal(self, sig: int) -> None:
        """Signal the child, unless it has already been reaped."""
        self._popen.send_signal(sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def _feed(self, data: bytes | None) -> None:
        if self.stdin is None:
            return
        try:
            if data:
                self.stdin.write(data)
                await self.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child stopped reading; its exit says why
        finally:
            self.stdin.close()

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Reap the child as soon as it ends: its pidfd becomes readable then."""
        pidfd = os.pidfd_open(self.pid)

        def ended() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            code = self._popen.wait()  # a zombie by now: waitpid returns at once
            if not self._exited.done():
                self._exited.set_result(code)

        loop.add_reader(pidfd, ended)


async def start(
    *argv: str,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    limit: int = LINE_LIMIT,
    **options: Any,
) -> Child:
    """Start ARGV with `subprocess.Popen` OPTIONS (env, cwd, pass_fds, start_new_session,
    preexec_fn); a PIPE for STDIN, STDOUT or STDERR becomes a stream, as with asyncio's
    subprocesses. Raises what Popen raises (an OSError when ARGV[0] cannot be run)."""
    loop = asyncio.get_running_loop()
    ours: dict[str, int] = {}  # our end of each pipe, by stream
    theirs: list[int] = []

    def piped(stream: str, value: Any) -> Any:
        if value != PIPE:
            return value
        read, write = os.pipe()
        ours[stream], child_end = (write, read) if stream == "stdin" else (read, write)
        theirs.append(child_end)
        return child_end

    try:
        given = {"stdin": stdin, "stdout": stdout, "stderr": stderr}
        stdio = {name: piped(name, value) for name, value in given.items()}
        popen = subprocess.Popen(argv, close_fds=True, **stdio, **options)
    except BaseException:
        for fd in ours.values():
            os.close(fd)
        raise
    finally:
        for fd in theirs:
            os.close(fd)
    child = Child(popen)
    try:
        child._watch(loop)
        for name, fd in list(ours.items()):
            del ours[name]
            if name == "stdin":
                child.stdin = await _writer(loop, fd)
            else:
                setattr(child, name, await _reader(loop, fd, limit))
    except BaseException:
        for fd in ours.values():
            os.close(fd)
        popen.kill()
        raise
    return child


def _pipe(loop: asyncio.AbstractEventLoop, fd: int, mode: str) -> IO[bytes]:
    """FD as the file object a loop's pipe transport takes, closed once whatever the loop.
    asyncio's transport closes the file object, so that must close FD. uvloop's closes FD
    itself and then the file object too: a second close of FD, which in a process with other
    threads can hit a file one of them has just opened under the same number (seen as a
    subprocess.run in a thread losing its output pipe). So for uvloop it must not."""
    return open(fd, mode, buffering=0, closefd=not type(loop).__module__.startswith("uvloop"))


async def _reader(loop: asyncio.AbstractEventLoop, fd: int, limit: int) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    await loop.connect_read_pipe(lambda: protocol, _pipe(loop, fd, "rb"))
    return reader


async def _writer(loop: asyncio.AbstractEventLoop, fd: int) -> asyncio.StreamWriter:
    protocol = asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), loop=loop)
    transport, _ = await loop.connect_write_pipe(lambda: protocol, _pipe(loop, fd, "wb"))
    return asyncio.StreamWriter(transport, protocol, None, loop)


async def _read(stream: asyncio.StreamReader | None) -> bytes:
    return b"" if stream is None else await stream.read()
