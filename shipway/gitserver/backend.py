"""Run `git http-backend` as a CGI: the request body streams in, the answer streams out as git
writes it, so the build log a hook prints reaches the pusher live."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from shipway import children
from shipway.gitserver import pktline

log = logging.getLogger(__name__)

CHUNK = 64 * 1024

#: The first bytes of a push are kept: they name the refs a refusal must reject.
HEAD_BYTES = 64 * 1024

#: Past its limit a push is read and dropped (so the client sees the refusal) up to this much.
DISCARD_MAX = 1024 * 1024 * 1024

#: Variables of the server's own environment that must not steer the repository's git.
_PRIVATE_PREFIXES = ("GIT_", "SHIPWAY_")


@functools.cache
def _http_backend() -> str:
    """git's own http-backend program, run without the `git` wrapper's fork in front of it."""
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return os.path.join(exec_path, "git-http-backend")


@dataclass(frozen=True)
class Limit:
    """The bytes a push may send, and what the pusher is told when it sends more."""

    size: int
    message: str
    reason: str


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes]


def environment(
    *,
    project_root: Path,
    path_info: str,
    method: str,
    query: str,
    headers: Mapping[str, str],
    remote_addr: str,
    remote_user: str,
    extra: Mapping[str, str],
    max_input: int | None = None,
) -> dict[str, str]:
    """The CGI variables of one request; EXTRA reaches the hooks too (git passes it through)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_PREFIXES)}
    env.update(
        GIT_PROJECT_ROOT=str(project_root),
        GIT_HTTP_EXPORT_ALL="1",
        PATH_INFO=path_info,
        REQUEST_METHOD=method,
        QUERY_STRING=query,
        CONTENT_TYPE=headers.get("content-type", ""),
        REMOTE_USER=remote_user,
        REMOTE_ADDR=remote_addr,
    )
    if "content-length" in headers and "transfer-encoding" not in headers:
        env["CONTENT_LENGTH"] = headers["content-length"]
    for header, variable in (
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "HTTP_GIT_PROTOCOL"),
    ):
        if header in headers:
            env[variable] = headers[header]
    if max_input is not None:
        # A gzip-encoded push inflates past what was counted on the wire; index-pack stops it.
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="receive.maxInputSize",
            GIT_CONFIG_VALUE_0=str(max(max_input, 1)),
        )
    env.update(extra)
    return env


async def run(
    env: Mapping[str, str],
    body: AsyncIterator[bytes],
    limit: Limit | None,
    pass_fds: tuple[int, ...] = (),
) -> Answer:
    """Serve one request. The whole body is read before the answer starts; past LIMIT the
    push is refused with a receive-pack result that names the limit. git (and its hooks)
    inherit PASS_FDS."""
    proc = await children.start(
        _http_backend(),
        stdin=children.PIPE,
        stdout=children.PIPE,
        stderr=children.PIPE,
        env=dict(env),
        start_new_session=True,
        pass_fds=pass_fds,
    )
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.create_task(proc.stderr.read())
    try:
        feeder = _Feeder(proc, limit)
        await feeder.feed(body)
        if feeder.refused and limit is not None:
            await _stop(proc)
            errors.cancel()
            gzipped = env.get("HTTP_CONTENT_ENCODING", "").lower() in ("gzip", "x-gzip")
            refusal = pktline.refuse_push(feeder.head, limit.message, limit.reason, gzipped)
            return Answer(200, [("Content-Type", pktline.RESULT_TYPE)], _once(refusal))
        status, headers = await _read_head(proc.stdout)
    except BaseException:
        await _stop(proc)
        errors.cancel()
        raise
    if status is None:
        await _stop(proc)
        stderr = (await errors).decode(errors="replace").strip()
        log.warning("git http-backend failed: %s", stderr)
        message = f"git http-backend failed: {stderr or 'no output'}\n".encode()
        return Answer(500, [("Content-Type", "text/plain")], _once(message))
    if status >= 400:
        return await _refusal(proc, errors, status, headers)
    return Answer(status, headers, _stream(proc, errors))


async def _refusal(
    proc: children.Child,
    errors: asyncio.Task[bytes],
    status: int,
    headers: list[tuple[str, str]],
) -> Answer:
    """http-backend's refusal (403 for a service not enabled, say), with the reason it wrote
    to stderr as the text git shows the pusher."""
    assert proc.stdout is not None
    body = await proc.stdout.read()
    await proc.wait()
    reason = (body + b"\n" + await errors).strip()
    log.info("git http-backend answered %d: %s", status, reason.decode(errors="replace"))
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
    message = reason.decode(errors="replace") or f"git http-backend answered {status}"
    return Answer(status, [*kept, ("Content-Type", "text/plain")], _once(message.encode() + b"\n"))


class _Feeder:
    """Copies the request body to the CGI's stdin, keeping its head and counting its bytes."""

    def __init__(self, proc: children.Child, limit: Limit | None) -> None:
        self.proc = proc
        self.limit = limit
        self.head = b""
        self.size = 0
        self.refused = False

    async def feed(self, body: AsyncIterator[bytes]) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        open_ = True
        try:
            async for chunk in body:
                self.size += len(chunk)
                if len(self.head) < HEAD_BYTES:
                    self.head += chunk[: HEAD_BYTES - len(self.head)]
                if self.limit is not None and self.size > self.limit.size:
                    if not self.refused:
                        self.refused, open_ = True, False
                        _signal(self.proc, signal.SIGTERM)
                    if self.size > self.limit.size + DISCARD_MAX:
                        return
                    continue
                if open_:
                    try:
                        stdin.write(chunk)
                        await stdin.drain()
                    except (BrokenPipeError, ConnectionResetError):
                        open_ = False
        finally:
            with contextlib.suppress(OSError):
                stdin.close()


async def _read_head(stdout: asyncio.StreamReader) -> tuple[int | None, list[tuple[str, str]]]:
    """The CGI header block: its Status (None if the output ended first) and other headers."""
    status: int | None = None
    headers: list[tuple[str, str]] = []
    while True:
        raw = await stdout.readline()
        if not raw:
            return None, headers
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            return status or 200, headers
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = int(value.split()[0])
        else:
            headers.append((name.strip(), value.strip()))


async def _stream(proc: children.Child, errors: asyncio.Task[bytes]) -> AsyncIterator[bytes]:
    """The rest of the CGI's output, chunk by chunk as it comes. If the client goes away first,
    the process group is stopped (a hook that follows a build stops following it)."""
    assert proc.stdout is not None
    ended = False
    try:
        while chunk := await proc.stdout.read(CHUNK):
            yield chunk
        ended = True
        await proc.wait()
    finally:
        if not ended:
            await _stop(proc)
        stderr = (await errors).strip() if ended else b""
        if not ended:
            errors.cancel()
        if proc.returncode and stderr:
            reason = stderr.decode(errors="replace")
            log.info("git http-backend exited %s: %s", proc.returncode, reason)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _signal(proc: children.Child, sig: int) -> None:
    """Signal the CGI's whole process group: http-backend, receive-pack and the hook."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


async def _stop(proc: children.Child) -> None:
    if proc.returncode is None:
        _signal(proc, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            _signal(proc, signal.SIGKILL)
            await proc.wait()
