"""Parsing and rewriting message heads, without sockets."""

from __future__ import annotations

import pytest

from shipway.router.http import HttpError, parse_request, parse_response


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
