"""OpenTelemetry traces: off, and free, unless an OTLP endpoint is set.

With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) in its
environment, a shipway process calls `setup` at start: the SDK's tracer provider is installed
with a BatchSpanProcessor that sends spans over OTLP/HTTP, and the SDK reads every other
`OTEL_*` variable itself (headers, sampler, batch sizes, resource attributes). Without it,
nothing is installed: the SDK is not even imported, the spans made through opentelemetry-api
are its no-op ones, no thread runs, and `active` stays False so that the hot paths (the
router, function calls, API requests) do not make spans at all.

Spans cross processes as W3C trace context: in HTTP headers (`headers`), in a child's
environment (`environment`, read back by `from_environment`), and in Temporal's headers (the
interceptor of `temporal_interceptors`), so a push is one trace from the git server to the
route switch on the node.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

#: Either names where spans go; the SDK's exporter reads them (and the rest) itself.
ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
#: service.name unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES names another.
SERVICE = "shipway"
#: The instrumentation scope of shipway's own spans.
SCOPE = "shipway"
#: The trace context's keys as a child process's environment carries them.
_ENV_KEYS = ("TRACEPARENT", "TRACESTATE", "BAGGAGE")

Attributes = Mapping[str, str | int | float | bool]

#: Whether this process exports spans. Hot paths test it before making one.
active = False
#: What makes shipway's spans, once `setup` has installed the provider (made once: the
#: SDK's get_tracer is far dearer than a span).
tracer: Tracer | None = None
_provider: Any = None


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ENVIRON asks for traces: an OTLP endpoint, and the SDK not turned off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINTS)


def setup(process: str) -> bool:
    """Export this process's spans if its environment asks for it (once; later calls do
    nothing); whether it does. PROCESS names it in the resource (`shipway.process`)."""
    global active, tracer, _provider
    if active or not wanted():
        return active
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"shipway.process": process})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: SERVICE}))
    # The provider flushes and stops its exporter's thread when the process exits.
    with _nothing_at_fork():
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider, tracer, active = provider, provider.get_tracer(SCOPE), True
    return True


@contextlib.contextmanager
def _nothing_at_fork() -> Iterator[None]:
    """Make the SDK's parts without their hooks that run in each forked child.

    The sandboxes fork children that join namespaces, and `setns(CLONE_NEWUSER)` refuses a
    caller with a second thread; at each fork the SDK would start one in the child (the batch
    processor's export thread, the provider's resource detectors). No forked child of shipway
    makes spans; one that did would still get its export thread at its first span, as the
    processor notices its new pid."""
    register = os.register_at_fork
    os.register_at_fork = lambda **_: None
    try:
        yield
    finally:
        os.register_at_fork = register


def span(
    name: str, attributes: Attributes | None = None, *, parent: Context | None = None
) -> contextlib.AbstractContextManager[Span | None]:
    """A span named NAME with ATTRIBUTES, the current one inside the `with` (a child of
    PARENT, else of the current span), which an exception ends as failed; None, and nothing
    made, when off."""
    if tracer is None:
        return contextlib.nullcontext()
    return tracer.start_as_current_span(name, parent, attributes=attributes)


def current() -> Context | None:
    """The current span's context, for work that goes on elsewhere to be its child; None
    when off."""
    if not active:
        return None
    from opentelemetry import context

    return context.get_current()


def fail(made: Span | None, why: str) -> None:
    """Mark MADE (what `span` gave) as failed, saying WHY, when the failure raised nothing."""
    if made is not None:
        from opentelemetry.trace import StatusCode

        made.set_status(StatusCode.ERROR, why)


def headers() -> dict[str, str]:
    """The current span as HTTP headers (`traceparent`, …) for a call to another shipway
    process; none when traces are off."""
    if not active:
        return {}
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def environment() -> dict[str, str]:
    """The current span as a child process's environment (`TRACEPARENT`, …)."""
    return {key.upper(): value for key, value in headers().items()}


def from_environment(environ: Mapping[str, str] = os.environ) -> Context | None:
    """The span context a parent process passed in ENVIRON (see `environment`); None when
    off or none was passed."""
    carrier = {key.lower(): environ[key] for key in _ENV_KEYS if environ.get(key)}
    return extract(carrier) if carrier else None


def extract(carrier: Mapping[str, str]) -> Context | None:
    """The span context CARRIER's headers name (a malformed one is ignored, never raised);
    None when off."""
    if not active:
        return None
    from opentelemetry import context, propagate

    try:
        return propagate.extract(carrier)
    except Exception:  # a client's headers must never fail its request
        return context.Context()


def flush(timeout: float = 5.0) -> bool:
    """Send the spans ended so far now rather than with the next batch; True when off."""
    if _provider is None:
        return True
    return bool(_provider.force_flush(int(timeout * 1000)))


def temporal_interceptors() -> list[Any]:
    """What a Temporal client carries so that spans cross workflows and activities (in
    Temporal's headers, to builders and nodes on other machines too): nothing when off."""
    if not active:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]
