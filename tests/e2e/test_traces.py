"""Traces as an operator gets them: a real `shipway up` pointed at an OTLP/HTTP receiver, a real
`git push` to live, a request through the router and a function call, each one trace."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Instance, start, stop
from tests.e2e.test_functions import write
from tests.e2e.test_push import make_repo, push
from tests.otlp import Receiver, Span, children, environment, receiving, tree

pytestmark = pytest.mark.e2e

APP = "traced"

#: A stdlib web app that answers with the traceparent the router gave it.
SERVER = r"""
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"traceparent": self.headers.get("traceparent")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""

FILES = {
    "server.py": SERVER,
    "Procfile": "release: echo migrating\nweb: python3 server.py\n",
    "pyproject.toml": '[project]\nname = "traced"\nversion = "1"\ndependencies = []\n',
}

SQUARE = "async function handler(event) { return event.params.x * event.params.x }\n"
#: A Python handler calling a JS one: a pipeline across both runtimes.
CHAIN = """def handler(event):
    return {"squared": shipway.call("square", {"x": event["params"]["x"]})}
"""


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Receiver]]:
    """A shipway whose every process sends its spans to a receiver of the test's own."""
    tmp = tmp_path_factory.mktemp("traced")
    with receiving() as receiver:
        running = start(tmp, "traced", **environment(receiver))
        try:
            yield running, receiver
        finally:
            stop(running)


def one(spans: list[Span], name: str, **attributes: object) -> Span | None:
    found = [
        s
        for s in spans
        if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


def child(spans: list[Span], parent: Span, name: str) -> Span:
    named = [s for s in children(spans, parent) if s.name == name]
    assert len(named) == 1, (name, tree(spans, parent))
    return named[0]


def below(spans: list[Span], parent: Span, *names: str) -> Span:
    """The span reached from PARENT through children named NAMES, one each."""
    for name in names:
        parent = child(spans, parent, name)
    return parent


def test_a_push_is_one_trace_from_git_to_the_route_switch(
    traced: tuple[Instance, Receiver], tmp_path: Path
) -> None:
    instance, receiver = traced
    assert instance.cli("apps", "create", APP).returncode == 0
    repo = make_repo(tmp_path / APP, FILES)
    pushed = push(instance, repo, APP)
    assert pushed.returncode == 0, pushed.stderr

    def switched(spans: list[Span]) -> Span | None:
        return one(spans, "route.switch", **{"shipway.app": APP})

    switch = receiver.wait(switched, 30, "the route switch's span")

    def rooted(spans: list[Span]) -> list[Span]:
        return [s for s in spans if s.trace_id == switch.trace_id and not s.parent_id]

    [root] = receiver.wait(rooted, 30, "the push's own span")
    spans = [s for s in receiver.received() if s.trace_id == switch.trace_id]
    print("\n".join(tree(spans, root)))
    assert root.name == "POST /git/{app}.git/{path}" and root.process == "control-plane"

    # FastAPI's own spans: a server span per request, the endpoint's run inside it.
    hook = below(spans, root, "fastapi.endpoint", "git.pre_receive")
    assert hook.process == "control-plane"  # the hook hands the push to the server
    branch = child(spans, hook, "git.deploy_branch")
    assert branch.attributes["vcs.ref.head.name"] == "main"
    launch = below(spans, branch, "POST /api/v1/apps/{app}/pushes")
    workflow = below(spans, launch, "fastapi.endpoint", "StartWorkflow:shipway.Deploy")

    build = below(spans, workflow, "StartActivity:shipway.build", "RunActivity:shipway.build")
    assert build.process == "control-plane"  # the builder inside `shipway up`
    steps = below(spans, build, "build")
    assert steps.attributes["shipway.app"] == APP
    assert {s.name for s in children(spans, steps)} >= {
        "build.checkout",
        "build.dependencies",
        "build.app_layer",
        "build.publish",
    }

    release = below(
        spans,
        workflow,
        "StartActivity:shipway.runtime.release",
        "RunActivity:shipway.runtime.release",
    )
    phase = child(spans, release, "release.phase")
    assert release.process == phase.process == "node"
    go_live = below(
        spans,
        workflow,
        "StartActivity:shipway.runtime.go_live",
        "RunActivity:shipway.runtime.go_live",
    )
    instance_start = child(spans, go_live, "instance.start")
    assert instance_start.attributes["shipway.instance"].endswith("web.1")
    child(spans, instance_start, "instance.health")
    assert child(spans, go_live, "route.switch") == switch
    assert switch.attributes["server.address"] == f"{APP}.localhost"
    assert not any(s.error for s in spans)
    # Each step starts once the one before it has ended.
    assert steps.end <= phase.start <= phase.end <= instance_start.start
    assert instance_start.end <= switch.start


def test_a_release_started_on_hearing_it_recorded_is_in_the_push_trace(
    traced: tuple[Instance, Receiver], tmp_path: Path
) -> None:
    """Without a release phase, the node starts the release as soon as NATS tells it the
    release is recorded: that start is a child of the step that recorded it."""
    instance, receiver = traced
    app = "heard"
    assert instance.cli("apps", "create", app).returncode == 0
    files = {**FILES, "Procfile": "web: python3 server.py\n"}
    pushed = push(instance, make_repo(tmp_path / app, files), app)
    assert pushed.returncode == 0, pushed.stderr

    def switched(spans: list[Span]) -> Span | None:
        return one(spans, "route.switch", **{"shipway.app": app})

    switch = receiver.wait(switched, 30, "the route switch's span")
    spans = [s for s in receiver.received() if s.trace_id == switch.trace_id]
    # The builder inside `shipway up` records the release as its build succeeds.
    [recorded] = [s for s in spans if s.name == "release.record"]
    [build] = [s for s in spans if s.span_id == recorded.parent_id]
    assert build.name == "build" and build.attributes["shipway.app"] == app
    early = child(spans, recorded, "release.early_start")
    assert recorded.process == "control-plane" and early.process == "node"
    instance_start = child(spans, early, "instance.start")
    assert instance_start.attributes["shipway.instance"].endswith("web.1")
    assert recorded.start <= early.start and instance_start.end <= switch.start
    assert not any(s.error for s in spans)


def test_the_router_hands_its_span_to_the_app(traced: tuple[Instance, Receiver]) -> None:
    instance, receiver = traced
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    sent = f"00-{trace_id}-{client_span}-01"
    answer = httpx.get(
        f"{instance.url}/", headers={"Host": f"{APP}.localhost", "traceparent": sent}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    got = answer.json()["traceparent"]
    version, got_trace, got_parent, _ = got.split("-")
    assert version == "00" and got_trace == trace_id and got_parent != client_span

    proxied = receiver.wait(
        lambda spans: next((s for s in spans if s.span_id == got_parent), None),
        30,
        "the router's span",
    )
    assert proxied.name == f"GET {APP}.localhost" and proxied.process == "node"
    assert proxied.trace_id == trace_id and proxied.parent_id == client_span
    assert proxied.attributes["http.response.status_code"] == 200

    # A malformed traceparent is no parent: the request is served in a trace of its own.
    malformed = "00-xyz-\u00e9\u00e9-01".encode("latin-1")
    bad = httpx.get(
        f"{instance.url}/",
        headers={"Host": f"{APP}.localhost", "traceparent": malformed},
        timeout=10,
    )
    assert bad.status_code == 200
    fresh = bad.json()["traceparent"].split("-")
    assert len(fresh) == 4 and len(fresh[1]) == 32 and fresh[1] != trace_id


def test_a_function_call_and_its_pipeline_are_one_trace(
    traced: tuple[Instance, Receiver], tmp_path: Path
) -> None:
    instance, receiver = traced
    square = write(tmp_path, "square.js", SQUARE)
    chain = write(tmp_path, "chain.py", CHAIN)
    for path, name in ((square, "square"), (chain, "chain")):
        deployed = instance.cli("fn", "deploy", path, "--name", name)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    answer = httpx.post(
        f"{instance.url}/fn/chain",
        json={"x": 6},
        headers={
            "Authorization": f"Bearer {instance.token}",
            "traceparent": f"00-{trace_id}-{client_span}-01",
        },
        timeout=60,
    )
    assert answer.json() == {"result": {"squared": 36}}, answer.text
    run = int(answer.headers["X-Shipway-Run"])

    def called(spans: list[Span]) -> bool:
        """Both calls and the request have ended: spans are sent in batches, so wait for each."""
        ours = [s for s in spans if s.trace_id == trace_id]
        return all(
            one(ours, "function.call", **{"shipway.function.name": name})
            for name in ("square", "chain")
        ) and any(s.parent_id == client_span for s in ours)

    receiver.wait(called, 30, "the pipeline's spans")
    spans = [s for s in receiver.received() if s.trace_id == trace_id]
    [served] = [s for s in spans if s.parent_id == client_span]
    print("\n".join(tree(spans, served)))
    assert served.name == "POST /fn/{name}" and served.process == "control-plane"
    outer = below(spans, served, "fastapi.endpoint", "function.call")
    assert outer.attributes["shipway.function.name"] == "chain"
    assert outer.attributes["shipway.run.id"] == run
    assert outer.attributes["shipway.run.status"] == "succeeded"
    inner = child(spans, outer, "function.call")
    assert inner.attributes["shipway.function.name"] == "square"
    assert inner.attributes["shipway.function.trigger"] == f"call:{run}"
    assert served.attributes["http.response.status_code"] == 200
