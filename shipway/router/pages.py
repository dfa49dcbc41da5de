"""The router's own responses: small error pages, and JSON errors for the control plane."""

from __future__ import annotations

import json
from html import escape
from http import HTTPStatus

_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    431: "request_header_fields_too_large",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def _phrase(status: int) -> str:
    """The reason phrase of STATUS."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def html_page(status: int, message: str) -> bytes:
    """A small self-contained HTML page; MESSAGE is escaped, it may name a hostile host."""
    title = f"{status} {_phrase(status)}"
    return (
        "<!doctype html>\n<html><head><meta charset=utf-8>"
        f"<title>{title}</title></head>\n<body><h1>{title}</h1>\n<p>{escape(message)}</p>"
        "\n<hr><small>shipway</small></body></html>\n"
    ).encode()


def json_error(status: int, message: str) -> bytes:
    """The API's error shape, so API clients read the router's errors like the API's own."""
    code = _CODES.get(status, "error")
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def response(
    status: int,
    body: bytes,
    *,
    content_type: bytes,
    request_id: bytes,
    keep_alive: bool,
    head_only: bool = False,
    headers: tuple[bytes, ...] = (),
) -> bytes:
    """A complete HTTP/1.1 response; HEAD_ONLY leaves the body out but keeps its length."""
    lines = [
        f"HTTP/1.1 {status} {_phrase(status)}".encode(),
        b"Content-Type: " + content_type,
        b"Content-Length: " + str(len(body)).encode(),
        b"Cache-Control: no-store",
        b"X-Request-Id: " + request_id,
        b"Connection: keep-alive" if keep_alive else b"Connection: close",
        *headers,
    ]
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    return head if head_only else head + body


def error(
    status: int,
    message: str,
    *,
    request_id: bytes,
    keep_alive: bool = False,
    head_only: bool = False,
    as_json: bool = False,
    headers: tuple[bytes, ...] = (),
) -> bytes:
    """An error response as an HTML page, or as JSON for the control plane's clients."""
    if as_json:
        body, content_type = json_error(status, message), b"application/json"
    else:
        body, content_type = html_page(status, message), b"text/html; charset=utf-8"
    return response(
        status,
        body,
        content_type=content_type,
        request_id=request_id,
        keep_alive=keep_alive,
        head_only=head_only,
        headers=headers,
    )
