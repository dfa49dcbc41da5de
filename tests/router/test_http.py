"""Parsing and rewriting message heads, without sockets."""

from __future__ import annotations

import pytest

from shipway.router.http import (
    MEMO_BYTES,
    MEMO_HEADS,
    HttpError,
    RequestHead,
    parse_request,
    parse_response,
)


def test_request_fields_the_proxy_acts_on() -> None:
    head = parse_request(
        b"POST /a?b=1 HTTP/1.1\r\nHost: App.Localhost:8080\r\nContent-Length: 12\r\n"
        b"X-Request-Id: id-1\r\nExpect: 100-continue\r\n\r\n"
    )
    assert (head.method, head.target, head.version) == (b"POST", b"/a?b=1", b"HTTP/1.1")
    assert head.host_name() == "app.localhost"
    assert head.content_length == 12 and not head.chunked
    assert head.keep_alive and head.expect_continue
    assert head.request_id == b"id-1"


def test_keep_alive_defaults_by_version() -> None:
    assert not parse_request(b"GET / HTTP/1.0\r\n\r\n").keep_alive
    assert parse_request(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive
    assert not parse_request(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive


def test_absolute_form_target_names_the_host() -> None:
    head = parse_request(b"GET http://app.localhost:8080/x?y HTTP/1.1\r\nHost: other\r\n\r\n")
    assert head.host_name() == "app.localhost"
    assert head.request_line == b"GET /x?y HTTP/1.1"


def test_ipv6_host_keeps_its_brackets() -> None:
    assert parse_request(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").host_name() == "[::1]"


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\0\r\n\r\n",
        b"GET /  HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
        b"CONNECT a:443 HTTP/1.1\r\n\r\n",
    ],
)
def test_bad_requests_are_refused(raw: bytes) -> None:
    with pytest.raises(HttpError):
        parse_request(raw)


def test_upstream_head_rewrites_connection_and_forwarding_headers() -> None:
    head = parse_request(
        b"GET / HTTP/1.1\r\nHost: a.localhost\r\nConnection: keep-alive, X-Private, "
        b"Content-Length\r\nX-Private: 1\r\nX-Forwarded-For: 1.2.3.4\r\n"
        b"X-Forwarded-For: 5.6.7.8\r\n"
        b"X-Forwarded-Host: evil\r\nContent-Length: 0\r\nAccept: */*\r\n\r\n"
    )
    out = head.for_upstream(b"9.9.9.9", b"rid")
    assert out.startswith(b"GET / HTTP/1.1\r\nHost: a.localhost\r\n")
    assert out.endswith(b"\r\n\r\n") and not out.endswith(b"\r\n\r\n\r\n")
    assert b"X-Private" not in out and b"Connection" not in out and b"evil" not in out
    assert b"Content-Length: 0\r\n" in out  # a Connection header may not remove framing
    assert b"X-Forwarded-For: 1.2.3.4, 5.6.7.8, 9.9.9.9\r\n" in out
    assert b"X-Forwarded-Host: a.localhost\r\n" in out
    assert b"X-Request-Id: rid\r\n" in out
    assert b"Accept: */*\r\n" in out


def test_the_router_s_trace_context_replaces_the_client_s() -> None:
    head = parse_request(
        b"GET / HTTP/1.1\r\nHost: a.localhost\r\nTraceparent: 00-client\r\n"
        b"tracestate: k=v\r\nBaggage: user=1\r\n\r\n"
    )
    assert b"Traceparent: 00-client\r\ntracestate: k=v\r\n" in head.for_upstream(b"c", b"r")
    ours = b"traceparent: 00-router\r\ntracestate: k=w"
    out = head.for_upstream(b"c", b"r", ours)
    assert b"00-client" not in out and b"k=v" not in out
    assert ours + b"\r\n" in out and b"Baggage: user=1\r\n" in out


def test_upgrade_needs_connection_upgrade() -> None:
    asked = parse_request(b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    assert asked.upgrade == b"websocket"
    out = asked.for_upstream(b"c", b"r")
    assert b"Upgrade: websocket\r\n" in out and b"Connection: Upgrade\r\n" in out
    assert parse_request(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").upgrade is None


def test_response_framing_and_reuse() -> None:
    sized = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    assert (sized.status, sized.content_length, sized.reusable) == (200, 5, True)
    chunked = parse_response(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert chunked.chunked and chunked.content_length is None
    assert not parse_response(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").reusable
    assert not parse_response(b"HTTP/1.0 200 OK\r\n\r\n").reusable
    assert parse_response(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").reusable
    with pytest.raises(HttpError) as bad:
        parse_response(b"HTTP/1.1 OK\r\n\r\n")
    assert bad.value.status == 502


def test_client_head_replaces_connection_and_request_id() -> None:
    clean = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert clean.for_client(b"r1", None) == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Request-Id: r1\r\n\r\n"
    )
    dirty = parse_response(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-Request-Id: old\r\n"
        b"Keep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n"
    )
    assert dirty.for_client(b"r2", b"close") == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Request-Id: r2\r\nConnection: close\r\n\r\n"
    )


def request_fields(head: RequestHead) -> dict[str, object]:
    """What a parsed request head says, field by field (its caches left out)."""
    return {name: getattr(head, name) for name in RequestHead.__slots__ if name[0] != "_"}


def test_a_bad_head_is_not_kept() -> None:
    """Parsed again, it is refused again: no half-parsed head is given for its bytes."""
    for parse, raw in (
        (parse_request, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        (parse_response, b"HTTP/1.1 OK\r\n\r\n"),
    ):
        for _ in range(2):
            with pytest.raises(HttpError):
                parse(raw)


def test_a_head_longer_than_the_memo_keeps_is_parsed_all_the_same() -> None:
    value = b"v" * (MEMO_BYTES + 1000)
    raw = b"GET /long HTTP/1.1\r\nHost: a.localhost\r\nX-Long: " + value + b"\r\n\r\n"
    assert len(raw) > MEMO_BYTES
    for _ in range(2):
        head = parse_request(raw)
        assert head.target == b"/long" and head.header(b"x-long") == value
        assert head.host_name() == "a.localhost"
    long_response = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Long: " + value + b"\r\n\r\n"
    for _ in range(2):
        response = parse_response(long_response)
        assert (response.status, response.content_length) == (200, 3)
        assert response.for_client(b"r", None).endswith(value + b"\r\nX-Request-Id: r\r\n\r\n")


def test_a_kept_head_parsed_again_says_the_same() -> None:
    raw = b"GET /same HTTP/1.1\r\nHost: a.localhost\r\nX-Request-Id: id-7\r\nAccept: */*\r\n\r\n"
    first = parse_request(raw)
    said = request_fields(first)
    assert said["target"] == b"/same" and said["request_id"] == b"id-7"
    first.for_upstream(b"1.1.1.1", b"r1")  # fills its caches
    again = parse_request(bytes(raw))  # equal bytes, another object
    assert request_fields(again) == said
    # Its caches never carry one client's head to another.
    out = again.for_upstream(b"2.2.2.2", b"r2")
    assert b"X-Forwarded-For: 2.2.2.2\r\n" in out and b"X-Request-Id: r2\r\n" in out
    assert b"1.1.1.1" not in out and b"r1" not in out
    assert first.for_upstream(b"1.1.1.1", b"r3").count(b"X-Request-Id: r3\r\n") == 1


def test_heads_parsed_past_the_memo_s_size_are_still_right() -> None:
    """The memo is emptied when full; a head kept before then is parsed anew, the same."""
    raws = [b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(MEMO_HEADS + 10)]
    for raw in raws:
        parse_request(raw)
    for i in (0, MEMO_HEADS - 1, MEMO_HEADS + 9):
        assert parse_request(raws[i]).target == b"/%d" % i


def test_a_plain_head_goes_upstream_as_it_came_with_forwarding_headers() -> None:
    head = parse_request(
        b"\r\nGET http://a.localhost/x?y=1 HTTP/1.1\r\nHost: other\r\nAccept: */*\r\n"
        b"Cookie: k=v; hostname=z\r\n\r\n"
    )
    assert head.plain and head.host_name() == "a.localhost"
    assert head.for_upstream(b"9.9.9.9", b"rid") == (
        b"GET /x?y=1 HTTP/1.1\r\nHost: other\r\nAccept: */*\r\nCookie: k=v; hostname=z\r\n"
        b"X-Forwarded-For: 9.9.9.9\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a.localhost\r\n"
        b"X-Request-Id: rid\r\n\r\n"
    )
    assert parse_request(b"GET / HTTP/1.1\r\n\r\n").for_upstream(b"c", b"r") == (
        b"GET / HTTP/1.1\r\nX-Forwarded-For: c\r\nX-Forwarded-Proto: http\r\n"
        b"X-Request-Id: r\r\n\r\n"
    )


@pytest.mark.parametrize(
    "line", [b"CONNECTION: close", b"X-Request-Id: mine", b"te: trailers", b"Content-Length: 0"]
)
def test_a_head_with_a_header_the_proxy_acts_on_is_not_plain(line: bytes) -> None:
    head = parse_request(b"GET / HTTP/1.1\r\nHost: a.localhost\r\n" + line + b"\r\n\r\n")
    assert not head.plain
    assert line not in head.for_upstream(b"c", b"r") or line == b"Content-Length: 0"


def test_a_second_host_header_is_refused_in_a_plain_head_too() -> None:
    with pytest.raises(HttpError):
        parse_request(b"GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nHOST: b\r\n\r\n")


def test_heads_that_share_their_header_lines_each_go_upstream_as_their_own() -> None:
    """New paths with the same header lines: the lines are parsed once, and each head goes
    upstream with its own request line, and the host its target may name."""
    lines = b"\r\nHost: a.localhost\r\nAccept: */*\r\n\r\n"
    one = parse_request(b"GET /one HTTP/1.1" + lines)
    two = parse_request(b"POST /two?x=1 HTTP/1.1" + lines)
    absolute = parse_request(b"GET http://b.localhost/three HTTP/1.1" + lines)
    old = parse_request(b"GET /four HTTP/1.0" + lines)
    for head in (one, two, absolute, one):
        head.for_upstream(b"9.9.9.9", b"r")  # fills the caches, the shared ones too
    forwarding = b"X-Forwarded-For: 9.9.9.9\r\nX-Forwarded-Proto: http\r\n"
    assert one.for_upstream(b"9.9.9.9", b"r1") == (
        b"GET /one HTTP/1.1\r\nHost: a.localhost\r\nAccept: */*\r\n"
        + forwarding
        + b"X-Forwarded-Host: a.localhost\r\nX-Request-Id: r1\r\n\r\n"
    )
    assert two.for_upstream(b"8.8.8.8", b"r2") == (
        b"POST /two?x=1 HTTP/1.1\r\nHost: a.localhost\r\nAccept: */*\r\n"
        b"X-Forwarded-For: 8.8.8.8\r\nX-Forwarded-Proto: http\r\n"
        b"X-Forwarded-Host: a.localhost\r\nX-Request-Id: r2\r\n\r\n"
    )
    assert (absolute.host_name(), one.host_name(), two.host_name()) == (
        "b.localhost",
        "a.localhost",
        "a.localhost",
    )
    assert absolute.for_upstream(b"9.9.9.9", b"r3") == (
        b"GET /three HTTP/1.1\r\nHost: a.localhost\r\nAccept: */*\r\n"
        + forwarding
        + b"X-Forwarded-Host: b.localhost\r\nX-Request-Id: r3\r\n\r\n"
    )
    assert not old.keep_alive
    assert old.for_upstream(b"9.9.9.9", b"r4") == (
        b"GET /four HTTP/1.0\r\nHost: a.localhost\r\nAccept: */*\r\n"
        + forwarding
        + b"X-Forwarded-Host: a.localhost\r\nX-Request-Id: r4\r\n\r\n"
    )


def test_bad_header_lines_are_refused_after_any_request_line() -> None:
    for target in (b"/a", b"/b"):
        with pytest.raises(HttpError, match="malformed header line"):
            parse_request(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nBad Line: x\r\n\r\n")
