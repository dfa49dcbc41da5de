"""Serving a static site's files straight from its release directory."""

from __future__ import annotations

import asyncio
import mimetypes
import os
import stat
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote_to_bytes

from shipway.router import pages
from shipway.router.http import RequestHead

_ALLOW = (b"Allow: GET, HEAD",)
#: Bytes of a file read at once where the loop cannot hand the file to the kernel.
FILE_CHUNK = 256 * 1024


class StaticFile:
    """A regular file found under a static root, with the headers that describe it."""

    __slots__ = ("etag", "last_modified", "mtime", "path", "size")

    def __init__(self, path: Path, st: os.stat_result) -> None:
        self.path = path
        self.size = st.st_size
        self.mtime = int(st.st_mtime)
        self.etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'.encode()
        self.last_modified = formatdate(st.st_mtime, usegmt=True).encode()

    @property
    def content_type(self) -> bytes:
        """The type guessed from the name; text gets an explicit charset."""
        kind, _ = mimetypes.guess_type(self.path.name)
        kind = kind or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
            kind += "; charset=utf-8"
        return kind.encode()

    def not_modified(self, head: RequestHead) -> bool:
        """Whether the client's cached copy is current (If-None-Match, else If-Modified-Since)."""
        tags = head.header(b"if-none-match")
        if tags is not None:
            wanted = {t.strip().removeprefix(b"W/") for t in tags.split(b",")}
            return b"*" in wanted or self.etag in wanted
        since = head.header(b"if-modified-since")
        if since is None:
            return False
        try:
            return self.mtime <= parsedate_to_datetime(since.decode("latin-1")).timestamp()
        except (TypeError, ValueError):
            return False


class Refused(Exception):
    """Raised when a request path may not be served: its `status` says how to answer."""

    def __init__(self, status: int, message: str, location: bytes | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.location = location


def _segments(target: bytes) -> tuple[bytes, list[str]]:
    """The request path and its decoded segments; refuses `..`, NULs and hidden files."""
    path = target.partition(b"?")[0].partition(b"#")[0]
    if path[:1] != b"/":
        raise Refused(400, "The request path must start with /.")
    raw = unquote_to_bytes(path)
    if b"\0" in raw or b"\\" in raw:
        raise Refused(400, "The request path holds a forbidden character.")
    try:
        text = raw.decode()
    except UnicodeDecodeError as e:
        raise Refused(400, "The request path is not UTF-8.") from e
    parts = [p for p in text.split("/") if p and p != "."]
    if ".." in parts:
        raise Refused(400, "The request path may not climb out of the site.")
    if any(p.startswith(".") and p != ".well-known" for p in parts):
        raise Refused(404, "No such file.")
    return path, parts


def locate(root: Path, target: bytes) -> StaticFile:
    """The file TARGET names under ROOT, following symlinks only while they stay inside."""
    path, parts = _segments(target)
    try:
        base = root.resolve()
        found = base.joinpath(*parts).resolve()
        st = found.stat() if found.is_relative_to(base) else None
        if st is not None and stat.S_ISDIR(st.st_mode):
            if not path.endswith(b"/"):
                query = target[len(path) :]
                raise Refused(301, "Moved to the directory.", location=path + b"/" + query)
            found = (found / "index.html").resolve()
            st = found.stat() if found.is_relative_to(base) else None
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop
        raise Refused(404, "No such file.") from e
    if st is None or not stat.S_ISREG(st.st_mode):
        raise Refused(404, "No such file.")
    return StaticFile(found, st)


async def serve(
    root: Path,
    head: RequestHead,
    writer: asyncio.StreamWriter,
    *,
    request_id: bytes,
    keep_alive: bool,
) -> tuple[int, bool]:
    """Answer from the files under ROOT; returns the status sent and whether the connection
    may carry another."""
    head_only = head.method == b"HEAD"
    if head.method != b"GET" and not head_only:
        return await _refuse(
            writer, 405, "Only GET and HEAD are allowed here.", request_id, False, head_only, _ALLOW
        )
    try:
        found = locate(root, head.target)
    except Refused as e:
        extra = (b"Location: " + e.location,) if e.location is not None else ()
        return await _refuse(writer, e.status, str(e), request_id, keep_alive, head_only, extra)
    headers = (b"ETag: " + found.etag, b"Last-Modified: " + found.last_modified)
    if found.not_modified(head):
        writer.write(_head(304, b"Not Modified", None, request_id, keep_alive, headers))
        await writer.drain()
        return 304, keep_alive
    length = str(found.size).encode()
    writer.write(
        _head(
            200,
            b"OK",
            found.content_type,
            request_id,
            keep_alive,
            (b"Content-Length: " + length, *headers),
        )
    )
    if head_only or found.size == 0:
        await writer.drain()
        return 200, keep_alive
    await writer.drain()
    with found.path.open("rb") as file:
        await _send_file(writer, file, found.size)
    return 200, keep_alive


async def _send_file(writer: asyncio.StreamWriter, file: BinaryIO, size: int) -> None:
    """SIZE bytes of FILE down the connection: by sendfile(2) where the loop can, else read in
    chunks beside the loop (uvloop's, which the node runs, has no sendfile)."""
    try:
        await asyncio.get_running_loop().sendfile(writer.transport, file, 0, size)
        return
    except NotImplementedError:
        pass
    left = size
    while left > 0:
        chunk = await asyncio.to_thread(file.read, min(FILE_CHUNK, left))
        if not chunk:
            break
        writer.write(chunk)
        await writer.drain()
        left -= len(chunk)


def _head(
    status: int,
    phrase: bytes,
    content_type: bytes | None,
    request_id: bytes,
    keep_alive: bool,
    headers: tuple[bytes, ...],
) -> bytes:
    """A response head for a file."""
    lines = [b"HTTP/1.1 %d %s" % (status, phrase)]
    if content_type is not None:
        lines.append(b"Content-Type: " + content_type)
    lines += [
        *headers,
        b"X-Request-Id: " + request_id,
        b"Connection: keep-alive" if keep_alive else b"Connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _refuse(
    writer: asyncio.StreamWriter,
    status: int,
    message: str,
    request_id: bytes,
    keep_alive: bool,
    head_only: bool,
    headers: tuple[bytes, ...] = (),
) -> tuple[int, bool]:
    """Send an error page instead of a file."""
    writer.write(
        pages.error(
            status,
            message,
            request_id=request_id,
            keep_alive=keep_alive,
            head_only=head_only,
            headers=headers,
        )
    )
    await writer.drain()
    return status, keep_alive
