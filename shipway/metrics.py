"""shipway's Prometheus series: what each one means, and the cheap calls that move them.

Two registries of shipway's own (never prometheus-client's global one), one per process kind:
the control plane's (builds, deployments, functions, audit ingest) and the data plane's (the
router and the instances, in the node process). The control plane's `GET /metrics` gives its
own series, then the ones made at scrape time (each part's health, the builder pools), then
the node's, which it asks the node for over the node's private socket; so one scrape job with
one platform owner token sees all of shipway.

What happens on a hot path costs a counter increment or a histogram observation: no I/O, no
lock held across anything else. Labels are bounded: results, stacks, pools, status classes,
and app and function names (bounded per platform); never a commit, a URL path or a user's
input.
"""

from __future__ import annotations

import bisect
import itertools
import math
import weakref
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Metric,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from shipway.errors import ValidationError
from shipway.events import Event

# A `_created` series per counter would double what is scraped and tell nothing a restart's
# counter reset does not.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: The text format every Prometheus reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

CONTROL_PLANE = CollectorRegistry()
DATA_PLANE = CollectorRegistry()

#: Builds run from seconds (a warm static site) to the build time limit.
BUILD_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
#: A build waits for a free slot from a moment to as long as a pool stays full.
WAIT_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
#: Function calls take milliseconds to their timeout.
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

# -- the control plane ----------------------------------------------------------------------

BUILDS = Counter(
    "shipway_builds",
    "Builds that ended, by result (succeeded, failed, cancelled, superseded), stack and pool.",
    ["result", "stack", "pool"],
    registry=CONTROL_PLANE,
)
BUILD_SECONDS = Histogram(
    "shipway_build_duration_seconds",
    "How long builds ran, from start to end, whatever their result.",
    ["stack", "pool"],
    buckets=BUILD_BUCKETS,
    registry=CONTROL_PLANE,
)
BUILD_CACHE = Counter(
    "shipway_build_cache",
    "Succeeded builds by whether their dependency cache was warm (cache=warm) or not (cold).",
    ["cache", "stack", "pool"],
    registry=CONTROL_PLANE,
)
QUEUE_WAIT = Histogram(
    "shipway_build_queue_wait_seconds",
    "How long builds waited from queued to started, by pool.",
    ["pool"],
    buckets=WAIT_BUCKETS,
    registry=CONTROL_PLANE,
)
DEPLOYMENTS = Counter(
    "shipway_deployments",
    "Deployments that ended, by result (live, failed, cancelled, superseded) and source "
    "(git, upload, config, rollback).",
    ["result", "source"],
    registry=CONTROL_PLANE,
)
FUNCTION_CALLS = Counter(
    "shipway_function_calls",
    "Function runs that ended, by function and status (succeeded, failed, timed_out).",
    ["function", "status"],
    registry=CONTROL_PLANE,
)
FUNCTION_SECONDS = Histogram(
    "shipway_function_duration_seconds",
    "How long function runs took, by function.",
    ["function"],
    buckets=CALL_BUCKETS,
    registry=CONTROL_PLANE,
)
AUDIT_ENTRIES = Counter(
    "shipway_audit_ingest_entries",
    "Audit entries other services sent, by the way they came (api, nats) and outcome "
    "(stored, duplicate: acknowledged without being stored again).",
    ["via", "outcome"],
    registry=CONTROL_PLANE,
)
AUDIT_BATCHES = Counter(
    "shipway_audit_ingest_batches",
    "Batches of audit entries stored (an API request or a NATS message), by the way they came.",
    ["via"],
    registry=CONTROL_PLANE,
)
AUDIT_FAILURES = Counter(
    "shipway_audit_ingest_failures",
    "Batches of audit entries not stored, by the way they came and reason (refused: they "
    "break the contract or name no tenant; store: the store could not take them).",
    ["via", "reason"],
    registry=CONTROL_PLANE,
)

#: Deployment states that end one; `retired` comes after `live`, so it is no result.
_DEPLOYMENT_RESULTS = frozenset({"live", "failed", "cancelled", "superseded"})


def hear(event: Event) -> None:
    """Count a build or a deployment that ended: a listener of shipway.events, so only what
    committed counts, once."""
    action, payload = event.action, event.payload
    if action == "build.end":
        _build_ended(payload)
    elif action.startswith("deployment."):
        result = action.removeprefix("deployment.")
        if result in _DEPLOYMENT_RESULTS:
            DEPLOYMENTS.labels(result, payload.get("source") or "unknown").inc()


def _build_ended(payload: Mapping[str, Any]) -> None:
    stack, pool = payload.get("stack") or "unknown", payload.get("pool") or "default"
    BUILDS.labels(payload.get("status") or "unknown", stack, pool).inc()
    if payload.get("seconds") is not None:
        BUILD_SECONDS.labels(stack, pool).observe(payload["seconds"])
    if payload.get("waited") is not None:
        QUEUE_WAIT.labels(pool).observe(payload["waited"])
    if payload.get("cache_warm") is not None:
        BUILD_CACHE.labels("warm" if payload["cache_warm"] else "cold", stack, pool).inc()


def function_ran(function: str, status: str, seconds: float | None) -> None:
    """A run of FUNCTION ended as STATUS after SECONDS (None: its runtime could not run it)."""
    FUNCTION_CALLS.labels(function, status).inc()
    if seconds is not None:
        FUNCTION_SECONDS.labels(function).observe(seconds)


def audit_stored(via: str, batches: int, stored: int, duplicates: int) -> None:
    AUDIT_BATCHES.labels(via).inc(batches)
    AUDIT_ENTRIES.labels(via, "stored").inc(stored)
    AUDIT_ENTRIES.labels(via, "duplicate").inc(duplicates)


def audit_failed(via: str, reason: str, batches: int = 1) -> None:
    AUDIT_FAILURES.labels(via, reason).inc(batches)


@contextmanager
def audit_batch(via: str) -> Iterator[None]:
    """Count a batch that fails within: refused when it breaks the contract (ValidationError),
    else one the store could not take."""
    try:
        yield
    except ValidationError:
        audit_failed(via, "refused")
        raise
    except Exception:
        audit_failed(via, "store")
        raise


def up(parts: Mapping[str, bool]) -> GaugeMetricFamily:
    """Each part's health as a 0/1 gauge, made at scrape time from the last health check."""
    family = GaugeMetricFamily(
        "shipway_up",
        "1 while a part of shipway (store, temporal, nats, addons, node) is healthy, else 0.",
        labels=["part"],
    )
    for part, healthy in sorted(parts.items()):
        family.add_metric([part], 1.0 if healthy else 0.0)
    return family


# -- the data plane (the node process) ------------------------------------------------------

_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


class Routed(Collector):
    """The router's requests by app and status class, and their durations by app.

    Kept in plain numbers and made into families when scraped: the router moves them at every
    request, and a prometheus-client child takes a lock per move and walks its buckets."""

    def __init__(self, buckets: tuple[float, ...] = Histogram.DEFAULT_BUCKETS) -> None:
        self.bounds = tuple(b for b in buckets if b != math.inf)
        self._requests: dict[tuple[str, str], int] = {}
        #: Per app: the count in each bucket (the last one past every bound), then the sum.
        self._durations: dict[str, list[float]] = {}

    def add(self, app: str, status: int | None, seconds: float) -> None:
        """One request to APP, answered with STATUS (None: not answered) after SECONDS."""
        answered = _CLASSES.get(status // 100, "none") if status is not None else "none"
        key = (app, answered)
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1
        durations = self._durations.get(app)
        if durations is None:
            durations = self._durations[app] = [0.0] * (len(self.bounds) + 2)
        durations[bisect.bisect_left(self.bounds, seconds)] += 1
        durations[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "shipway_router_requests",
            "Requests the router answered for an app, by app and status class (2xx, …, 5xx; "
            "none when the client went away before an answer).",
            labels=["app", "status_class"],
        )
        for (app, answered), count in sorted(self._requests.items()):
            requests.add_metric([app, answered], count)
        durations = HistogramMetricFamily(
            "shipway_router_request_duration_seconds",
            "How long the router took over an app's requests, from the request head to the end "
            "of the answer.",
            labels=["app"],
        )
        bounds = [*map(floatToGoString, self.bounds), "+Inf"]
        for app, counts in sorted(self._durations.items()):
            cumulative = list(itertools.accumulate(counts[:-1]))
            durations.add_metric([app], list(zip(bounds, cumulative, strict=True)), counts[-1])
        yield requests
        yield durations


ROUTED = Routed()
DATA_PLANE.register(ROUTED)
routed = ROUTED.add


class Census(Collector):
    """A gauge of the things alive now, by the state each reports when scraped: counted then,
    so nothing has to be told twice (in and out) to keep it right."""

    def __init__(
        self, name: str, documentation: str, label: str, *, gone: Iterable[str] = ()
    ) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.gone = frozenset(gone)
        self._things: weakref.WeakSet[Any] = weakref.WeakSet()

    def add(self, thing: Any) -> None:
        """Count THING, by the `state` it has at each scrape, until it is gone."""
        self._things.add(thing)

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=[self.label])
        counted = Tally(str(thing.state) for thing in list(self._things))
        for state, count in sorted(counted.items()):
            if state not in self.gone:
                family.add_metric([state], count)
        yield family


INSTANCES = Census(
    "shipway_instances",
    "App instances of the node, by state (starting, healthy, draining, crashed).",
    "state",
    gone=("stopped",),
)
DATA_PLANE.register(INSTANCES)


# -- exposition ------------------------------------------------------------------------------


class Scraped(Collector):
    """Families made at scrape time, in the shape of a registry."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def text(registry: Collector) -> str:
    """REGISTRY's series in Prometheus' text format; texts of disjoint families concatenate."""
    return generate_latest(registry).decode()
