"""The control plane's series move with real work: builds and deployments through the real
DeployWorkflow (Temporal, NATS, bubblewrap), function calls in real V8, audit entries through
the API (through NATS: tests/audit/test_consumer.py); and `GET /metrics` gives them to a
platform owner only. The router's plain numbers (Routed) come out as the families they stand
for."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from shipway import metrics, subscribers
from shipway.apps.secretbox import SecretBox
from shipway.functions.invoke import Invoker
from shipway.functions.registry import Deployed, Registry
from shipway.functions.runtimes.js.runtime import JsRuntime
from shipway.functions.runtimes.python.runtime import WorkerUnavailable
from shipway.functions.worker import _Js
from shipway.store import Store
from shipway.store.tables import Function
from tests.audit.test_consumer import entry
from tests.deploys.test_workflow import Platform, platform  # noqa: F401  (a fixture)
from tests.functions.test_records import Unavailable, function
from tests.helpers import auth, make_token

# Whatever committed here counts, as in the control plane (its API wires the same listener).
subscribers.measure_events()


def value(name: str, **labels: str) -> float:
    """A control-plane sample now, 0 while it has never moved."""
    found = metrics.CONTROL_PLANE.get_sample_value(name, labels)
    return found or 0.0


def scraped(text: str) -> dict[str, Any]:
    """The families of an exposition, by name; each family's samples as {labels: value}."""
    return {
        family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
        for family in text_string_to_metric_families(text)
    }


@pytest.mark.integration
async def test_builds_and_deployments_are_counted_as_they_end(
    platform: Platform,  # noqa: F811
) -> None:
    pool = platform.queue
    live_before = value("shipway_deployments_total", result="live", source="upload")
    failed_before = value("shipway_deployments_total", result="failed", source="upload")
    rolled_before = value("shipway_deployments_total", result="live", source="rollback")

    first = await platform.deploy({"index.html": "<h1>one"})
    assert await platform.wait(first, {"live", "failed"}) == "live"
    second = await platform.deploy({"index.html": "<h1>two"})
    assert await platform.wait(second, {"live", "failed"}) == "live"
    broken = await platform.deploy({"README.md": "no stack here"})
    assert await platform.wait(broken, {"live", "failed"}) == "failed"
    rollback = await platform.rollback(to=1)
    assert await platform.wait(rollback, {"live", "failed"}) == "live"

    static = {"stack": "static", "pool": pool}
    assert value("shipway_builds_total", result="succeeded", **static) == 2
    assert value("shipway_builds_total", result="failed", stack="unknown", pool=pool) == 1
    assert value("shipway_build_duration_seconds_count", **static) == 2
    assert value("shipway_build_duration_seconds_sum", **static) > 0
    assert value("shipway_build_queue_wait_seconds_count", pool=pool) == 3
    warm = value("shipway_build_cache_total", cache="warm", **static)
    cold = value("shipway_build_cache_total", cache="cold", **static)
    assert warm + cold == 2 and cold >= 1  # the first build of the app had nothing cached
    assert value("shipway_deployments_total", result="live", source="upload") == live_before + 2
    assert value("shipway_deployments_total", result="failed", source="upload") == (
        failed_before + 1
    )
    assert value("shipway_deployments_total", result="live", source="rollback") == (
        rolled_before + 1
    )


@pytest_asyncio.fixture(scope="module")
async def v8() -> AsyncIterator[JsRuntime]:
    runtime = JsRuntime(max_workers=2, warm=1)
    yield runtime
    await runtime.close()


def deployed(store: Store, name: str, runtime: str, source: str) -> Deployed:
    """A function of tenant acme, as a worker finds it."""
    made = function(store, name)
    with store.transaction() as session:
        fn = session.get(Function, made)
        assert fn is not None
        return Deployed(fn.organization_id, made, name, 1, runtime, source, 30, 128, False)


async def test_function_calls_are_counted_by_function_and_status(
    store: Store, v8: JsRuntime, tmp_path: Path
) -> None:
    invoker = Invoker(
        store,
        Registry(),
        {"js": _Js(v8), "python": Unavailable()},
        SecretBox.load(tmp_path),
    )
    name = f"fn-{uuid.uuid4().hex[:8]}"
    ok = deployed(store, name, "js", "function handler(e) { return e.params.x * 2 }")
    for x in (1, 2):
        ran = await invoker.invoke(ok.organization_id, name, {"x": x}, deployed=ok)
        assert ran.outcome.result == 2 * x
    thrower = deployed(
        store, f"{name}-throws", "js", "function handler() { throw new Error('no') }"
    )
    await invoker.invoke(thrower.organization_id, thrower.name, {}, deployed=thrower)
    gone = deployed(store, f"{name}-py", "python", "def handler(e): pass")
    with pytest.raises(WorkerUnavailable):
        await invoker.invoke(gone.organization_id, gone.name, {}, deployed=gone)
    await invoker.settle()

    assert value("shipway_function_calls_total", function=name, status="succeeded") == 2
    assert value("shipway_function_duration_seconds_count", function=name) == 2
    assert value("shipway_function_calls_total", function=thrower.name, status="failed") == 1
    # A call its runtime could not run failed, and took no time worth a duration.
    assert value("shipway_function_calls_total", function=gone.name, status="failed") == 1
    assert value("shipway_function_duration_seconds_count", function=gone.name) == 0


def test_audit_entries_through_the_api_are_counted(api: TestClient) -> None:
    stored = value("shipway_audit_ingest_entries_total", via="api", outcome="stored")
    batches = value("shipway_audit_ingest_batches_total", via="api")
    refused = value("shipway_audit_ingest_failures_total", via="api", reason="refused")
    batch = [entry("flag:1"), entry("flag:2")]
    assert api.post("/api/v1/audit/entries", json=batch).status_code == 201
    assert api.post("/api/v1/audit/entries", json=batch[0]).json()["duplicates"] == 1
    assert api.post("/api/v1/audit/entries", json=[{"sequence": "x"}]).status_code == 422
    assert value("shipway_audit_ingest_entries_total", via="api", outcome="stored") == stored + 2
    assert value("shipway_audit_ingest_batches_total", via="api") == batches + 2
    assert value("shipway_audit_ingest_failures_total", via="api", reason="refused") == (
        refused + 1
    )


def test_the_scrape_is_for_platform_owners_only(api: TestClient) -> None:
    deployer = make_token(api, "deployer")
    tenant = api.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"]
    owner = api.headers.pop("Authorization")
    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", headers={"Authorization": "Bearer swt_wrong"}).status_code == 401
    assert api.get("/metrics", headers=auth(deployer)).status_code == 403
    refused = api.get("/metrics", headers=auth(tenant))
    assert refused.status_code == 403 and "platform owner" in refused.json()["error"]["message"]
    assert api.get("/metrics", headers={"Authorization": owner}).status_code == 200


def test_a_scrape_without_temporal_nats_or_a_node_still_answers(api: TestClient) -> None:
    """Metrics matter most while a part is down: the scrape says which, and gives the rest."""
    assert api.post("/api/v1/audit/entries", json=entry("flag:1")).status_code == 201
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = scraped(response.text)
    assert families["shipway_up"] == {
        (("part", "nats"),): 0.0,
        (("part", "store"),): 1.0,
        (("part", "temporal"),): 0.0,
    }
    assert families["shipway_audit_ingest_batches"][(("via", "api"),)] >= 1
    for name in (
        "shipway_builds",
        "shipway_build_duration_seconds",
        "shipway_build_queue_wait_seconds",
        "shipway_build_cache",
        "shipway_deployments",
        "shipway_function_calls",
        "shipway_function_duration_seconds",
        "shipway_audit_ingest_failures",
        "shipway_pool_builders",
        "shipway_pool_oldest_wait_seconds",
    ):
        assert name in families, name
    # No node here: its series are not made up, and its health is not claimed.
    assert "shipway_router_requests" not in families and "shipway_instances" not in families


def test_the_router_s_numbers_are_exposed_as_a_counter_and_a_histogram() -> None:
    routed = metrics.Routed(buckets=(0.1, 0.5, 1.0))
    registry = CollectorRegistry()
    registry.register(routed)
    routed.add("shop", 200, 0.05)
    routed.add("shop", 204, 0.1)  # on a bound: counted under it (le is "at most")
    routed.add("shop", 404, 0.7)
    routed.add("shop", None, 3.0)  # the client went away; past every bound
    routed.add("blog", 503, 0.25)
    routed.add("blog", 101, 0.5)

    text = metrics.text(registry)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def requests(app: str, status_class: str) -> float | None:
        labels = (("app", app), ("status_class", status_class))
        return samples.pop(("shipway_router_requests_total", labels), None)

    def histogram(app: str) -> tuple[list[float | None], float | None, float | None]:
        """The cumulative bucket counts, the count and the sum of APP's durations."""
        name = "shipway_router_request_duration_seconds"
        buckets = [
            samples.pop((f"{name}_bucket", (("app", app), ("le", le))), None)
            for le in ("0.1", "0.5", "1.0", "+Inf")
        ]
        count = samples.pop((f"{name}_count", (("app", app),)), None)
        return buckets, count, samples.pop((f"{name}_sum", (("app", app),)), None)

    assert "# TYPE shipway_router_requests_total counter" in text
    assert "# TYPE shipway_router_request_duration_seconds histogram" in text
    assert [requests("shop", c) for c in ("2xx", "4xx", "none")] == [2, 1, 1]
    assert [requests("blog", c) for c in ("1xx", "5xx")] == [1, 1]
    buckets, count, seconds = histogram("shop")
    assert (buckets, count) == ([2, 2, 3, 4], 4) and seconds == pytest.approx(3.85)
    buckets, count, seconds = histogram("blog")
    assert (buckets, count) == ([0, 2, 2, 2], 2) and seconds == pytest.approx(0.75)
    assert samples == {}  # nothing else: no _created series, no other class or app


def test_the_router_s_default_buckets_end_in_one_inf() -> None:
    routed = metrics.Routed()
    registry = CollectorRegistry()
    registry.register(routed)
    routed.add("shop", 200, 0.003)
    routed.add("shop", 200, 1e6)
    text = metrics.text(registry)
    assert text.count('le="+Inf"') == 1
    assert 'shipway_router_request_duration_seconds_bucket{app="shop",le="+Inf"} 2.0' in text
    assert 'shipway_router_request_duration_seconds_bucket{app="shop",le="0.005"} 1.0' in text
    assert 'shipway_router_request_duration_seconds_bucket{app="shop",le="10.0"} 1.0' in text
    assert 'shipway_router_request_duration_seconds_count{app="shop"} 2.0' in text
