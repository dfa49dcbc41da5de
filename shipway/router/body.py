"""Relaying message bodies between two streams as they arrive, never holding a whole body.

Failures say which side broke: a proxy answers differently when the client went away than
when the upstream did.
"""

from __future__ import annotations

import asyncio
import re

from shipway.router.http import CRLF, HttpError

#: The most read from one side before it is written to the other.
PIECE = 64 * 1024
#: Trailer lines accepted after the last chunk.
MAX_TRAILERS = 64

_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class SourceBroken(Exception):
    """Raised when the side being read from closed or reset before the body ended."""


class SinkBroken(Exception):
    """Raised when the side being written to closed or reset."""


async def _read(src: asyncio.StreamReader, n: int) -> bytes:
    """Up to N bytes, or SourceBroken when the source ends first."""
    try:
        data = await src.read(n)
    except ConnectionError as e:
        raise SourceBroken(str(e)) from e
    if not data:
        raise SourceBroken("closed before the body ended")
    return data


async def _read_exactly(src: asyncio.StreamReader, n: int) -> bytes:
    """Exactly N bytes, or SourceBroken."""
    try:
        return await src.readexactly(n)
    except (asyncio.IncompleteReadError, ConnectionError) as e:
        raise SourceBroken("closed before the body ended") from e


async def _read_line(src: asyncio.StreamReader) -> bytes:
    """One CRLF-terminated line of chunked framing, or SourceBroken."""
    try:
        return await src.readuntil(CRLF)
    except (asyncio.IncompleteReadError, ConnectionError) as e:
        raise SourceBroken("closed before the body ended") from e
    except asyncio.LimitOverrunError as e:
        raise HttpError(400, "chunk line too long") from e


async def write(dst: asyncio.StreamWriter, data: bytes) -> None:
    """Write and wait while the destination's buffer is full, or SinkBroken."""
    dst.write(data)
    transport = dst.transport
    if transport.get_write_buffer_size() or transport.is_closing():
        try:
            await dst.drain()
        except ConnectionError as e:
            raise SinkBroken(str(e)) from e


async def relay_length(src: asyncio.StreamReader, dst: asyncio.StreamWriter, n: int) -> None:
    """Relay a body of exactly N bytes."""
    while n > 0:
        data = await _read(src, min(n, PIECE))
        n -= len(data)
        await write(dst, data)


def _chunk_size(line: bytes) -> int:
    """The size on a chunk-size line, ignoring extensions; strict, so both ends agree."""
    size = line[:-2].partition(b";")[0].rstrip(b" \t")
    if _CHUNK_SIZE.fullmatch(size) is None:
        raise HttpError(400, "malformed chunk size")
    return int(size, 16)


async def relay_chunked(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, limit: int | None = None
) -> int:
    """Relay a chunked body, framing and all, each chunk as soon as it is whole; its size."""
    # HttpError(413) once the body grows past LIMIT, HttpError(400) on malformed framing.
    total = 0
    while True:
        line = await _read_line(src)
        size = _chunk_size(line)
        if size == 0:
            await write(dst, line + await _trailers(src))
            return total
        total += size
        if limit is not None and total > limit:
            raise HttpError(413, "the request body is too large")
        if size <= PIECE:
            data = await _read_exactly(src, size + 2)
            if data[-2:] != CRLF:
                raise HttpError(400, "chunk not followed by CRLF")
            await write(dst, line + data)
            continue
        await write(dst, line)
        await relay_length(src, dst, size)
        if await _read_exactly(src, 2) != CRLF:
            raise HttpError(400, "chunk not followed by CRLF")
        await write(dst, CRLF)


async def _trailers(src: asyncio.StreamReader) -> bytes:
    """The trailer section after the last chunk, up to and including its empty line."""
    lines = []
    for _ in range(MAX_TRAILERS):
        line = await _read_line(src)
        lines.append(line)
        if line == CRLF:
            return b"".join(lines)
    raise HttpError(400, "too many trailer lines")


async def relay_to_eof(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Relay until the source closes: a body delimited by the end of the connection."""
    while True:
        try:
            data = await src.read(PIECE)
        except ConnectionError as e:
            raise SourceBroken(str(e)) from e
        if not data:
            return
        await write(dst, data)


async def splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """Copy bytes both ways until either side closes: an upgraded connection."""
    tasks = [
        asyncio.ensure_future(relay_to_eof(a[0], b[1])),
        asyncio.ensure_future(relay_to_eof(b[0], a[1])),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
