"""The router's span of a request it proxies to an app, when traces are on.

The span is a server span, a child of the client's `traceparent` when it sent a valid one (a
malformed one is ignored: it starts a trace of its own), and the app gets the span's own
`traceparent` in place of the client's, so that the app's spans join the trace. With traces
off the router makes none of this, and a client's `traceparent` reaches the app untouched as
any other header.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shipway import tracing
from shipway.router.http import CRLF, RequestHead
from shipway.router.table import Route

#: W3C trace context only: a client's baggage passes to the app as the client sent it.
_W3C = TraceContextTextMapPropagator()


@contextmanager
def proxied(head: RequestHead, host: str, route: Route, client: bytes) -> Iterator[Span]:
    """The span of HEAD's way through the router to ROUTE's app, current inside the `with`."""
    method = head.method.decode("latin-1")
    attributes: tracing.Attributes = {
        "http.request.method": method,
        "url.path": head.target.partition(b"?")[0].decode("latin-1"),
        "server.address": host,
        "client.address": client.decode("latin-1"),
        "shipway.app": route.app,
        "shipway.environment": route.environment,
    }
    assert tracing.tracer is not None, "the router makes spans only with traces on"
    with tracing.tracer.start_as_current_span(
        f"{method} {host}", _parent(head), kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        yield span


def header_lines() -> bytes:
    """The current span's `traceparent` (and `tracestate`) as request header lines."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return CRLF.join(f"{name}: {value}".encode("latin-1") for name, value in carrier.items())


def answered(span: Span, status: int | None) -> None:
    """Note the status the client got; a 5xx fails the span."""
    if status is None:
        return
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(StatusCode.ERROR)


def _parent(head: RequestHead) -> context.Context:
    """The client's span context, if its `traceparent` is valid; else none (a new trace)."""
    empty = context.Context()
    parent = head.header(b"traceparent")
    if parent is None:
        return empty
    carrier = {"traceparent": parent.decode("latin-1")}
    state = head.header(b"tracestate")
    if state is not None:
        carrier["tracestate"] = state.decode("latin-1")
    try:
        return _W3C.extract(carrier, empty)
    except Exception:  # whatever a client sends, the router answers
        return empty
