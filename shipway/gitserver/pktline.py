"""Just enough of git's pkt-line protocol to refuse a push in words the pusher sees."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

FLUSH = b"0000"
#: The data a side-band packet carries after its band byte: side-band-64k, then side-band.
BAND_DATA = {"side-band-64k": 65515, "side-band": 995}
SIDEBAND_DATA = b"\x01"
SIDEBAND_MESSAGE = b"\x02"
RESULT_TYPE = "application/x-git-receive-pack-result"


def pkt(data: bytes | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return f"{len(raw) + 4:04x}".encode() + raw


def packets(data: bytes) -> Iterator[bytes | None]:
    """The packets at the start of DATA (None for a flush), up to the first incomplete one."""
    at = 0
    while at + 4 <= len(data):
        try:
            length = int(data[at : at + 4], 16)
        except ValueError:
            return
        if length < 4:
            yield None
            at += 4
            continue
        if at + length > len(data):
            return
        yield data[at + 4 : at + length]
        at += length


def push_commands(head: bytes, gzipped: bool = False) -> tuple[list[str], set[str]]:
    """The refs a receive-pack request updates and the capabilities it asked for, read from
    the first bytes of its body (which may be gzip-encoded)."""
    if gzipped:
        head = zlib.decompressobj(wbits=31).decompress(head)
    refs: list[str] = []
    capabilities: set[str] = set()
    for packet in packets(head):
        if packet is None:
            break
        command, _, caps = packet.rstrip(b"\n").partition(b"\0")
        capabilities.update(caps.decode(errors="replace").split())
        parts = command.decode(errors="replace").split(" ")
        if len(parts) == 3:
            refs.append(parts[2])
    return refs, capabilities


def refuse_push(head: bytes, message: str, reason: str, gzipped: bool = False) -> bytes:
    """A receive-pack result that rejects every ref of the request with REASON and shows
    MESSAGE as a `remote:` line."""
    refs, capabilities = push_commands(head, gzipped)
    report = pkt(f"unpack {reason}\n")
    report += b"".join(pkt(f"ng {ref} {reason}\n") for ref in refs) + FLUSH
    band = next((BAND_DATA[c] for c in BAND_DATA if c in capabilities), None)
    if band is None:
        return report
    body = pkt(SIDEBAND_MESSAGE + f"{message}\n".encode())
    for at in range(0, len(report), band):
        body += pkt(SIDEBAND_DATA + report[at : at + band])
    return body + FLUSH
