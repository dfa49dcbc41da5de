"""Traces set up as each shipway process does it, in processes of their own (a tracer provider is
set once per process): off and free without an OTLP endpoint, exported to a real OTLP/HTTP
receiver with one."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap

from tests.otlp import Receiver, receiving, tree


def run(code: str, env: dict[str, str]) -> str:
    """Run CODE in a fresh interpreter with ENV (and no OTEL_* of this one's); its stdout."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def otlp(receiver: Receiver, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "50", **extra}


def test_without_an_endpoint_nothing_is_installed_or_even_loaded() -> None:
    out = run(
        """
        import json, sys, threading
        from shipway import server, tracing
        from shipway.gitserver import hook
        from shipway.nodes import agent
        from opentelemetry import trace

        setup = tracing.setup("control-plane")
        with tracing.span("anything", {"a": 1}) as span:
            made = span
        valid = {"TRACEPARENT": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
        print(json.dumps({
            "setup": setup,
            "active": tracing.active,
            "sdk": [m for m in sys.modules if m.startswith("opentelemetry.sdk")],
            "provider": type(trace.get_tracer_provider()).__name__,
            "threads": threading.active_count(),
            "span": made,
            "headers": tracing.headers(),
            "parent": tracing.from_environment(valid),
            "interceptors": len(tracing.temporal_interceptors()),
        }))
        """,
        {},
    )
    assert json.loads(out) == {
        "setup": False,
        "active": False,
        "sdk": [],
        "provider": "ProxyTracerProvider",
        "threads": 1,
        "span": None,
        "headers": {},
        "parent": None,
        "interceptors": 0,
    }


def test_the_git_hook_loads_no_opentelemetry_when_off() -> None:
    out = run(
        """
        import sys
        from shipway.gitserver import hook
        print([m for m in sys.modules if m.startswith("opentelemetry")])
        """,
        {},
    )
    assert out.strip() == "[]"


def test_spans_are_exported_with_their_parents_and_the_process_named() -> None:
    with receiving() as receiver:
        run(
            """
            from shipway import tracing
            assert tracing.setup("builder")
            with tracing.span("outer", {"shipway.app": "web"}):
                with tracing.span("inner") as inner:
                    tracing.fail(inner, "it broke")
            """,
            otlp(receiver),
        )
        receiver.wait(lambda spans: len(spans) == 2, 10, "two spans")
        outer, inner = sorted(receiver.received(), key=lambda s: s.start)
    assert tree([outer, inner], outer) == ["outer [builder]", "  inner [builder]"]
    assert outer.attributes == {"shipway.app": "web"} and not outer.error and inner.error
    assert outer.resource["service.name"] == "shipway"


def test_the_standard_variables_are_the_sdk_s_own() -> None:
    with receiving() as receiver:
        run(
            """
            from shipway import tracing
            assert tracing.setup("node")
            with tracing.span("named"):
                pass
            """,
            otlp(receiver, OTEL_SERVICE_NAME="paas", OTEL_RESOURCE_ATTRIBUTES="region=eu"),
        )
        [span] = receiver.wait(lambda spans: spans, 10, "the span")
    assert span.resource["service.name"] == "paas" and span.resource["region"] == "eu"
    assert span.process == "node"


def test_a_child_process_joins_the_trace_its_environment_names() -> None:
    child = "from shipway import tracing\\nassert tracing.setup('git-hook')\\n" + (
        "with tracing.span('child', parent=tracing.from_environment()):\\n    pass\\n"
    )
    with receiving() as receiver:
        run(
            f"""
            import os, subprocess, sys
            from shipway import tracing
            assert tracing.setup("control-plane")
            with tracing.span("parent"):
                env = {{**os.environ, **tracing.environment()}}
                subprocess.run([sys.executable, "-c", "{child}"], env=env, check=True)
            """,
            otlp(receiver),
        )
        receiver.wait(lambda spans: len(spans) == 2, 10, "both spans")
        spans = receiver.received()
    [parent] = [s for s in spans if s.name == "parent"]
    assert tree(spans, parent) == ["parent [control-plane]", "  child [git-hook]"]


def test_a_forked_child_has_no_thread_but_its_own_spans_still_go_out() -> None:
    """The sandboxes' forked children join user namespaces, which a second thread forbids."""
    with receiving() as receiver:
        out = run(
            """
            import os
            from shipway import tracing
            assert tracing.setup("node")
            with tracing.span("before"):
                pass
            pid = os.fork()
            if pid == 0:
                threads = len(os.listdir("/proc/self/task"))
                with tracing.span("in the child", {"threads": threads}):
                    pass
                tracing.flush()
                os._exit(0)
            os.waitpid(pid, 0)
            """,
            otlp(receiver),
        )
        assert out == ""
        receiver.wait(lambda spans: len(spans) == 2, 10, "the child's span")
    [forked] = [s for s in receiver.received() if s.name == "in the child"]
    assert forked.attributes["threads"] == 1


def test_a_malformed_trace_context_starts_a_trace_of_its_own() -> None:
    trace_id = secrets.token_hex(16)
    with receiving() as receiver:
        run(
            f"""
            from shipway import tracing
            assert tracing.setup("control-plane")
            for value in ("00-{trace_id}-{"0" * 16}-01", "garbage", "00-{trace_id}-zz-01"):
                with tracing.span("served", parent=tracing.extract({{"traceparent": value}})):
                    pass
            with tracing.span("valid", parent=tracing.extract(
                {{"traceparent": "00-{trace_id}-{"3" * 16}-01", "tracestate": "=,=,\\x00"}}
            )):
                pass
            """,
            otlp(receiver),
        )
        spans = receiver.wait(lambda spans: len(spans) == 4 and spans, 10, "four spans")
    served = [s for s in spans if s.name == "served"]
    assert all(not s.parent_id and s.trace_id != trace_id for s in served)
    [valid] = [s for s in spans if s.name == "valid"]
    assert valid.trace_id == trace_id and valid.parent_id == "3" * 16
