"""A tiny OTLP/HTTP trace receiver on 127.0.0.1: what a collector sees of shipway's spans.

It takes `POST /v1/traces` bodies as the SDK's exporter sends them (protobuf, gzipped or not),
decodes each `ExportTraceServiceRequest` and keeps its spans, with the resource that made them.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class Span:
    """One received span, its ids as hex."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, Any]
    #: The resource's attributes: service.name, shipway.process.
    resource: dict[str, Any]
    error: bool
    start: int
    end: int

    @property
    def process(self) -> str:
        return str(self.resource.get("shipway.process", ""))


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def decode(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    Span(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        kind=span.kind,
                        attributes=_attributes(span.attributes),
                        resource=resource,
                        error=span.status.code == span.status.STATUS_CODE_ERROR,
                        start=span.start_time_unix_nano,
                        end=span.end_time_unix_nano,
                    )
                )
    return spans


@dataclass
class Receiver:
    """The spans received so far, and the URL to give OTEL_EXPORTER_OTLP_ENDPOINT."""

    url: str
    spans: list[Span] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[Span]:
        with self.lock:
            return list(self.spans)

    def wait(self, found: Callable[[list[Span]], Any], timeout: float, what: str) -> Any:
        """FOUND's answer once it has one (it looks at every span received so far)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = found(self.received())
            if answer:
                return answer
            time.sleep(0.05)
        names = sorted({s.name for s in self.received()})
        raise AssertionError(f"timed out waiting for {what}; spans received: {names}")


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A receiver listening on a free loopback port until the block ends."""
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            spans = decode(body)
            with receiver.lock:
                receiver.spans.extend(spans)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def children(spans: list[Span], parent: Span) -> list[Span]:
    return [s for s in spans if s.parent_id == parent.span_id and s.trace_id == parent.trace_id]


def tree(spans: list[Span], root: Span, depth: int = 0) -> list[str]:
    """ROOT and its descendants as indented lines (name and process), children by start."""
    lines = [f"{'  ' * depth}{root.name} [{root.process}]"]
    for child in sorted(children(spans, root), key=lambda s: s.start):
        lines += tree(spans, child, depth + 1)
    return lines


#: The environment that points a shipway process at RECEIVER, exporting without delay.
def environment(receiver: Receiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_SERVICE_NAME": "shipway-test",
    }
