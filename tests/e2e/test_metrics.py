"""`GET /metrics` of a real `shipway up` after real work (a git push to live, requests through
the router, a function call, audit entries): every part's series are in one scrape, the
node's among them, and every series the shipped Grafana dashboard queries is there."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Instance
from tests.e2e.test_functions import call, write
from tests.e2e.test_live import FILES, visit
from tests.e2e.test_push import make_repo, push

pytestmark = pytest.mark.e2e

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "shipway.json"


def scrape(instance: Instance, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or instance.token}"} if token != "" else {}
    return httpx.get(f"{instance.url}/metrics", headers=headers, timeout=30)


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def total(found: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of NAME's samples that carry LABELS."""
    return sum(
        value for sample, have, value in found if sample == name and labels.items() <= have.items()
    )


def declared(text: str) -> set[str]:
    """The series a scrape declares (`# TYPE`), samples or not: a pool's desired size, say,
    has none without an autoscaling policy."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        names |= {name + suffix for suffix in suffixes}
    return names


def queried(dashboard: dict[str, Any]) -> set[str]:
    """Every series name the dashboard's panels and variables query."""
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    queries += [variable["definition"] for variable in dashboard["templating"]["list"]]
    return {name for query in queries for name in re.findall(r"\bshipway_[a-z_]+\b", query)}


def test_one_scrape_covers_every_part_and_the_dashboard(instance: Instance, tmp_path: Path) -> None:
    app = f"metered-{uuid.uuid4().hex[:6]}"
    assert instance.cli("apps", "create", app).returncode == 0
    pushed = push(instance, make_repo(tmp_path / app, FILES), app)
    assert pushed.returncode == 0, pushed.stderr
    for _ in range(3):
        assert visit(instance, f"{app}.localhost").status_code == 200

    function = f"hello-{uuid.uuid4().hex[:6]}"
    source = write(tmp_path, "hello.js", "function handler(e) { return 'hi ' + e.params.who }\n")
    assert instance.cli("fn", "deploy", source, "--name", function).returncode == 0
    assert call(instance, function, {"who": "you"}).json() == {"result": "hi you"}

    entries = f"{instance.url}/api/v1/audit/entries"
    owner = {"Authorization": f"Bearer {instance.token}"}
    entry = {"sequence": str(uuid.uuid4()), "actor": "service:x", "action": "x.done",
             "subject": "x:1"}  # fmt: skip
    assert httpx.post(entries, json=[entry], headers=owner, timeout=30).status_code == 201
    assert httpx.post(entries, json=[{"sequence": "no"}], headers=owner).status_code == 422

    assert scrape(instance, token="").status_code == 401
    made = httpx.post(
        f"{instance.url}/api/v1/tokens",
        json={"name": "ci", "role": "deployer"},
        headers=owner,
        timeout=30,
    )
    assert scrape(instance, token=made.json()["token"]).status_code == 403
    response = scrape(instance)
    assert response.status_code == 200, response.text
    found = samples(response.text)

    for part in ("store", "temporal", "nats", "node"):
        assert total(found, "shipway_up", part=part) == 1, part
    built = [
        labels
        for name, labels, value in found
        if name == "shipway_builds_total" and labels["result"] == "succeeded" and value
    ]
    assert built and all(labels["stack"] != "unknown" for labels in built)
    assert total(found, "shipway_build_duration_seconds_count") >= 1
    assert total(found, "shipway_build_queue_wait_seconds_count", pool="default") >= 1
    assert total(found, "shipway_build_cache_total") >= 1
    assert total(found, "shipway_deployments_total", result="live", source="git") >= 1
    assert total(found, "shipway_pool_slots", pool="default") >= 1
    assert total(found, "shipway_function_calls_total", function=function) == 1
    assert total(found, "shipway_audit_ingest_entries_total", via="api", outcome="stored") >= 1
    assert total(found, "shipway_audit_ingest_failures_total", via="api", reason="refused") >= 1
    # The node's series, which the control plane asked the node for.
    assert total(found, "shipway_router_requests_total", app=app, status_class="2xx") == 3
    assert total(found, "shipway_router_request_duration_seconds_count", app=app) == 3
    assert total(found, "shipway_instances", state="healthy") >= 1

    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"][0]["name"] == "DS_PROMETHEUS"
    missing = queried(dashboard) - {name for name, _, _ in found} - declared(response.text)
    assert not missing, f"the dashboard queries series /metrics does not give: {missing}"
