"""HTTP/1.x message heads: parsed with bytes operations, rewritten for the other side.

Only the fields a proxy acts on are picked out (framing, connection handling, host and
forwarding headers); every other header line passes through byte for byte.

Most request heads carry no header the proxy acts on but Host: those are checked as a whole
and sent upstream as they came, forwarding headers added, without a look at each line. A busy
connection also sends the same few heads over and over, and an app answers with the same few
(one per second at most, by their Date). So a parsed head, never changed after parsing, is
kept by its bytes and given again for the same bytes. A client that asks for ever new paths
still sends the same header lines after each request line: those are parsed once too, and
their upstream form (forwarding headers added) is made once for every request line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from shipway.errors import ShipwayError

CRLF = b"\r\n"
HEAD_END = b"\r\n\r\n"

#: Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"}
)
#: Request headers the proxy sets itself, replacing what the client sent.
_SET_BY_PROXY = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"})
_DROP_FROM_REQUEST = HOP_BY_HOP | _SET_BY_PROXY | {b"x-request-id"}
#: The client's trace context, replaced when the router traces the request itself.
_TRACE_CONTEXT = frozenset({b"traceparent", b"tracestate"})
_DROP_FROM_RESPONSE = HOP_BY_HOP | {b"x-request-id"}
#: Framing and routing headers a Connection header may not remove: that would let a client
#: make the proxy and the upstream disagree on where a message ends.
_PROTECTED = frozenset({b"host", b"content-length", b"transfer-encoding"})
_NOTED_REQUEST = frozenset(
    {b"host", b"content-length", b"transfer-encoding", b"connection", b"upgrade", b"expect"}
    | _DROP_FROM_REQUEST
)
_NOTED_RESPONSE = frozenset({b"content-length", b"transfer-encoding"} | _DROP_FROM_RESPONSE)
#: Finds, in a lowercased head, a header the proxy acts on other than Host; a head with none
#: (most are so) needs no look at each of its lines.
_NOTED_LINE = re.compile(
    rb"\r\n(?:" + rb"|".join(re.escape(n) for n in sorted(_NOTED_REQUEST - {b"host"})) + rb"):"
)
_HOST_LINE = b"\r\nhost:"

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
#: A request line; the target is visible bytes only, so no whitespace or control byte.
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e\x80-\xff]+) (HTTP/1\.[01])")
#: The header lines and the empty line after them: no bare CR or LF, no NUL, no space
#: before the colon, no line folding; other parsers may read any of those differently.
_FIELD_LINES = re.compile(rb"(?:" + _TOKEN + rb":[^\0\r\n]*\r\n)*\r\n")
_DIGITS = re.compile(rb"[0-9]{1,18}")
REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")
#: Heads kept after parsing, per kind, and the longest kept: at most about 2 MiB in all.
MEMO_HEADS = 512
MEMO_BYTES = 2048

_Head = TypeVar("_Head")


def _memoized(parse: Callable[[bytes], _Head]) -> Callable[[bytes], _Head]:
    """PARSE, giving the same head again for the same bytes; bad heads are not kept."""
    memo: dict[bytes, _Head] = {}

    def parse_memoized(raw: bytes) -> _Head:
        head = memo.get(raw)
        if head is None:
            head = parse(raw)
            if len(raw) <= MEMO_BYTES:
                if len(memo) >= MEMO_HEADS:
                    memo.clear()
                memo[raw] = head
        return head

    parse_memoized.__doc__ = parse.__doc__
    return parse_memoized


class HttpError(ShipwayError):
    """Raised when a message breaks HTTP/1.1 framing; `status` is the answer to give."""

    code = "bad_request"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _tokens(value: bytes) -> list[bytes]:
    """The comma-separated, case-insensitive tokens of a header such as Connection."""
    return [t.strip(b" \t") for t in value.lower().split(b",") if t.strip(b" \t")]


def _content_length(value: bytes, previous: int | None) -> int:
    """A Content-Length value; a second, different one makes the message ambiguous."""
    if _DIGITS.fullmatch(value) is None:
        raise HttpError(400, "Content-Length is not a number")
    length = int(value)
    if previous is not None and previous != length:
        raise HttpError(400, "conflicting Content-Length headers")
    return length


class RequestHead:
    """A parsed request head. RAW[LINES:] are its header lines, each after a CRLF, then the
    empty line; `fields()` splits them into (lowercased name, value, raw line).

    PLAIN heads have no header line the proxy acts on but Host: sent upstream as they are,
    forwarding headers added."""

    __slots__ = (
        "_forwarded",
        "_host_name",
        "_lines",
        "chunked",
        "connection",
        "content_length",
        "expect_continue",
        "host",
        "keep_alive",
        "lines",
        "method",
        "plain",
        "raw",
        "request_id",
        "request_line",
        "target",
        "upgrade",
        "version",
    )

    def __init__(self, raw: bytes, lines: int, said: _HeaderLines) -> None:
        self.raw = raw
        self.lines = lines
        self.request_line = b""
        self.method = b""
        self.target = b""
        self.version = b""
        self.plain = said.plain
        self.host: bytes | None = None
        self.content_length = said.content_length
        self.chunked = said.chunked
        self.connection = said.connection
        self.keep_alive = True
        self.upgrade = said.upgrade
        self.expect_continue = said.expect_continue
        self.request_id = said.request_id
        #: The last client's upstream head, split around where the request id goes.
        self._forwarded: tuple[bytes, bytes, bytes] | None = None
        self._host_name: str | None = None
        #: The header lines' own parse when they alone make the upstream head's rest (a
        #: plain HTTP/1.1 head whose host they name), shared by every request line before them.
        self._lines: _HeaderLines | None = None

    @property
    def has_body(self) -> bool:
        """Whether body bytes follow the head."""
        return self.chunked or bool(self.content_length)

    def fields(self) -> list[tuple[bytes, bytes, bytes]]:
        """(lowercased name, value, raw line) of each header line."""
        return _fields(self.raw[self.lines :])

    def header(self, name: bytes) -> bytes | None:
        """The first value of header NAME (lowercase), for the rarely needed ones."""
        for lname, value, _ in self.fields():
            if lname == name:
                return value
        return None

    def host_name(self) -> str:
        """The Host without port and trailing dot, lowercased; "" when there is none."""
        shared = self if self._lines is None else self._lines
        name = shared._host_name
        if name is None:
            name = shared._host_name = self._name_of_host()
        return name

    def _name_of_host(self) -> str:
        host = self.host
        if not host:
            return ""
        if host[:1] == b"[":
            return host[: host.find(b"]") + 1].decode("latin-1").lower()
        return host.partition(b":")[0].rstrip(b".").decode("latin-1").lower()

    def for_upstream(self, client: bytes, request_id: bytes, trace: bytes | None = None) -> bytes:
        """The head to send upstream: hop-by-hop headers out, forwarding headers in; TRACE,
        the router's own trace context header lines, in place of the client's."""
        if trace is not None:
            return self._for_upstream(client, request_id, trace)
        shared = self if self._lines is None else self._lines
        forwarded = shared._forwarded
        if forwarded is None or forwarded[0] != client:
            before, _, after = self._for_upstream(client, b"\0", None).partition(b"\0")
            if shared is not self:
                before = before[len(self.request_line) :]  # what follows any request line
            forwarded = shared._forwarded = (client, before, after)
        if shared is self:
            return forwarded[1] + request_id + forwarded[2]
        return self.request_line + forwarded[1] + request_id + forwarded[2]

    def _for_upstream(self, client: bytes, request_id: bytes, trace: bytes | None) -> bytes:
        forwarded_for = b""
        if self.plain and trace is None:  # nothing to drop or merge: the lines go as they came
            out = [self.request_line + self.raw[self.lines : -4]]
        else:
            drop = _DROP_FROM_REQUEST
            if self.connection:
                drop = drop | (frozenset(self.connection) - _PROTECTED)
            if trace is not None:
                drop = drop | _TRACE_CONTEXT
            out = [self.request_line]
            for lname, value, line in self.fields():
                if lname not in drop:
                    out.append(line)
                elif lname == b"x-forwarded-for":
                    forwarded_for = forwarded_for + b", " + value if forwarded_for else value
                elif lname == b"upgrade" and self.upgrade is not None:
                    out.append(line)
        out.append(
            b"X-Forwarded-For: " + (forwarded_for + b", " + client if forwarded_for else client)
        )
        out.append(b"X-Forwarded-Proto: http")
        if self.host is not None:
            out.append(b"X-Forwarded-Host: " + self.host)
        out.append(b"X-Request-Id: " + request_id)
        if trace:
            out.append(trace)
        if self.upgrade is not None:
            out.append(b"Connection: Upgrade")
        elif self.version == b"HTTP/1.0" and self.keep_alive:
            out.append(b"Connection: keep-alive")
        return CRLF.join(out) + HEAD_END


def _request_line(head: RequestHead, line: re.Match[bytes]) -> None:
    """Take "METHOD TARGET HTTP/1.x"; absolute-form targets become origin-form."""
    method, target, version = line.groups()
    if method == b"CONNECT":
        raise HttpError(405, "CONNECT is not supported")
    head.request_line = line.group()
    if target[:1] != b"/" and target != b"*":
        scheme, sep, rest = target.partition(b"://")
        if not sep or scheme.lower() not in (b"http", b"https"):
            raise HttpError(400, "malformed request target")
        authority, slash, path = rest.partition(b"/")
        head.host = authority
        target = slash + path if slash else b"/"
        head.request_line = b" ".join((method, target, version))
    head.method, head.target, head.version = method, target, version


def _note_request_header(head: _HeaderLines, lname: bytes, value: bytes) -> None:
    """Record a header the proxy acts on."""
    if lname == b"host":
        if head.host is None:
            head.host = value
    elif lname == b"content-length":
        head.content_length = _content_length(value, head.content_length)
    elif lname == b"transfer-encoding":
        codings = _tokens(value)
        head.chunked = bool(codings) and codings[-1] == b"chunked"
        if not head.chunked:
            raise HttpError(400, "unsupported Transfer-Encoding")
    elif lname == b"connection":
        head.connection.extend(_tokens(value))
    elif lname == b"upgrade":
        head.upgrade = value
    elif lname == b"expect":
        head.expect_continue = value.lower() == b"100-continue"
    elif lname == b"x-request-id" and REQUEST_ID.fullmatch(value) is not None:
        head.request_id = value


def _fields(block: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """(lowercased name, value, raw line) of each line of BLOCK: header lines, each after a
    CRLF, then the empty line."""
    block = block[2:-4]
    if not block:
        return []
    fields = []
    for line in block.split(CRLF):
        name, _, value = line.partition(b":")
        fields.append((name.lower(), value.strip(b" \t"), line))
    return fields


class _HeaderLines:
    """What a request's header lines say, whatever its request line; kept by their bytes."""

    __slots__ = (
        "_forwarded",
        "_host_name",
        "chunked",
        "connection",
        "content_length",
        "expect_continue",
        "host",
        "plain",
        "request_id",
        "upgrade",
    )

    def __init__(self) -> None:
        self.plain = False
        self.host: bytes | None = None
        self.content_length: int | None = None
        self.chunked = False
        self.connection: list[bytes] = []
        self.upgrade: bytes | None = None
        self.expect_continue = False
        self.request_id: bytes | None = None
        #: As RequestHead's, for the part of the upstream head after the request line.
        self._forwarded: tuple[bytes, bytes, bytes] | None = None
        self._host_name: str | None = None


@_memoized
def _header_lines(block: bytes) -> _HeaderLines:
    """Parse BLOCK, a head's header lines (each after a CRLF) and the empty line after them;
    raise HttpError when they are bad."""
    if _FIELD_LINES.fullmatch(block, 2) is None:
        raise HttpError(400, "malformed header line")
    lines = _HeaderLines()
    lowered = block.lower()
    if _NOTED_LINE.search(lowered) is None:
        lines.plain = True
        at = lowered.find(_HOST_LINE)
        if at >= 0:
            if lowered.find(_HOST_LINE, at + 7) >= 0:
                raise HttpError(400, "more than one Host header")
            at += 7
            lines.host = block[at : block.find(CRLF, at)].strip(b" \t")
    else:
        hosts = 0
        for lname, value, _ in _fields(block):
            if lname in _NOTED_REQUEST:
                hosts += lname == b"host"
                _note_request_header(lines, lname, value)
        if hosts > 1:
            raise HttpError(400, "more than one Host header")
    if lines.chunked and lines.content_length is not None:
        raise HttpError(400, "both Content-Length and Transfer-Encoding")
    if lines.upgrade is not None and b"upgrade" not in lines.connection:
        lines.upgrade = None
    return lines


@_memoized
def parse_request(raw: bytes) -> RequestHead:
    """Parse a request head that ends with an empty line; raise HttpError when it is bad."""
    start = 0
    while raw.startswith(CRLF, start):
        start += 2  # stray empty lines before a request are allowed
    end = raw.find(CRLF, start)
    request_line = _REQUEST_LINE.fullmatch(raw, start, end) if end > 0 else None
    if request_line is None:
        raise HttpError(400, "malformed request line")
    lines = _header_lines(raw[end:])
    head = RequestHead(raw, end, lines)
    _request_line(head, request_line)  # an absolute-form target names the host itself
    if head.host is None:
        head.host = lines.host
        if head.plain and head.version == b"HTTP/1.1":
            head._lines = lines
    if head.version == b"HTTP/1.1":
        head.keep_alive = b"close" not in head.connection
    else:
        head.keep_alive = b"keep-alive" in head.connection
    return head


class ResponseHead:
    """A parsed response head from an upstream."""

    __slots__ = (
        "chunked",
        "connection",
        "content_length",
        "dirty",
        "encoded",
        "raw",
        "reusable",
        "status",
        "status_line",
    )

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.status_line = b""
        self.status = 0
        self.content_length: int | None = None
        self.chunked = False
        self.encoded = False
        self.connection: list[bytes] = []
        self.dirty = False
        self.reusable = True

    def for_client(self, request_id: bytes, connection: bytes | None) -> bytes:
        """The head to send to the client, with its own Connection header and request id."""
        tail = b"X-Request-Id: " + request_id + CRLF
        if connection is not None:
            tail += b"Connection: " + connection + CRLF
        if not self.dirty:
            return self.raw[:-2] + tail + CRLF
        drop = _DROP_FROM_RESPONSE
        if self.connection:
            drop = drop | (frozenset(self.connection) - _PROTECTED)
        keep_upgrade = self.status == 101
        out = [self.status_line]
        for line in self.raw[len(self.status_line) + 2 : -4].split(CRLF):
            lname = line.partition(b":")[0].lower()
            if lname not in drop or (keep_upgrade and lname == b"upgrade"):
                out.append(line)
        out.append(tail)
        return CRLF.join(out) + CRLF


@_memoized
def parse_response(raw: bytes) -> ResponseHead:
    """Parse an upstream's response head; raise HttpError(502) when it is not HTTP/1.x."""
    lines = raw[:-4].split(CRLF)
    head = ResponseHead(raw)
    line = head.status_line = lines[0]
    version = line[:8]
    code = line[9:12]
    if version[:7] != b"HTTP/1." or line[8:9] != b" " or not code.isdigit():
        raise HttpError(502, "the upstream sent a malformed status line")
    head.status = int(code)
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name[-1:] in b" \t":
            raise HttpError(502, "the upstream sent a malformed header line")
        lname = name.lower()
        if lname in _NOTED_RESPONSE:
            _note_response_header(head, lname, value.strip(b" \t"))
    if head.encoded:
        head.content_length = None  # Transfer-Encoding wins over Content-Length
    if version == b"HTTP/1.1":
        head.reusable = b"close" not in head.connection
    else:
        head.reusable = b"keep-alive" in head.connection
    return head


def _note_response_header(head: ResponseHead, lname: bytes, value: bytes) -> None:
    """Record a header the proxy acts on."""
    if lname == b"content-length":
        try:
            head.content_length = _content_length(value, head.content_length)
        except HttpError as e:
            raise HttpError(502, f"the upstream sent a bad Content-Length: {e}") from e
    elif lname == b"transfer-encoding":
        codings = _tokens(value)
        head.chunked = bool(codings) and codings[-1] == b"chunked"
        head.encoded = True
    else:
        head.dirty = True
        if lname == b"connection":
            head.connection.extend(_tokens(value))
