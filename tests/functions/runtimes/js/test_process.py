"""JS functions through a JS host process: V8 stays out of the caller, shipway.call comes back
to it, and the host ends when idle, or dies, without taking the caller with it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import psutil
import pytest

from shipway.errors import ServiceError
from shipway.functions.outcome import CompileError, RunStatus
from shipway.functions.runtimes.js import process
from shipway.functions.runtimes.js.process import JsProcess
from tests.helpers import until

#: A generous bound on a call that should end at once.
PATIENCE = 30.0

#: Run in a fresh interpreter, since this test process has V8 loaded by the runtime's tests.
_V8_ELSEWHERE = """
import asyncio, os, sys
from shipway.functions import runtimes
from shipway.functions.outcome import CompileError
from shipway.functions.runtimes.js.process import JsProcess

async def main():
    host = JsProcess()
    outcome = await host.run(
        "function handler(e) { return e.params.x * 2 }", {"params": {"x": 21}},
        timeout=30, memory_mb=64,
    )
    maps = open(f"/proc/{host.pid}/maps").read()
    await host.close()
    return outcome.result, "mini_racer" in maps

result, v8_in_host = asyncio.run(main())
runtimes.check("js", "function handler() {}")
try:
    runtimes.check("js", "function handler() {}\\nlet = = 1")
except CompileError as e:
    refused = e.line
v8_here = "mini_racer" in open("/proc/self/maps").read()
print(result, v8_in_host, refused, "py_mini_racer" in sys.modules, v8_here)
"""


def test_v8_runs_in_the_host_not_in_the_caller() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _V8_ELSEWHERE], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["42", "True", "2", "False", "False"]


@pytest.fixture
async def host() -> AsyncIterator[JsProcess]:
    js = JsProcess()
    yield js
    await js.close()


async def test_shipway_call_is_served_on_the_callers_loop(host: JsProcess) -> None:
    seen: list[tuple[str, Any, int]] = []

    async def call(name: str, params: Any) -> Any:
        seen.append((name, params, threading.get_ident()))
        if name == "broken":
            raise RuntimeError("the callee failed")
        return {"doubled": params["n"] * 2}

    source = """
    async function handler(event) {
      const ok = await shipway.call("double", { n: event.params.n })
      let error = null
      try { await shipway.call("broken", {}) } catch (e) { error = e.message }
      return { ok, error }
    }"""
    outcome = await host.run(
        source, {"params": {"n": 4}}, timeout=PATIENCE, memory_mb=64, call=call
    )
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert outcome.result == {"ok": {"doubled": 8}, "error": "the callee failed"}
    assert [(name, params) for name, params, _ in seen] == [("double", {"n": 4}), ("broken", {})]
    assert {thread for _, _, thread in seen} == {threading.get_ident()}


async def test_without_a_callback_shipway_call_rejects(host: JsProcess) -> None:
    source = "async function handler() { return await shipway.call('x', {}) }"
    outcome = await host.run(source, {}, timeout=PATIENCE, memory_mb=64)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None and "not available" in outcome.error["message"]


async def test_errors_logs_and_timeouts_come_back_as_the_runtime_gives_them(
    host: JsProcess,
) -> None:
    thrown = await host.run(
        "function handler() { console.log('before'); throw new Error('boom') }",
        {},
        timeout=PATIENCE,
        memory_mb=64,
    )
    assert thrown.status is RunStatus.FAILED
    assert thrown.error is not None and thrown.error["message"] == "boom"
    assert thrown.logs == ["before"]
    spinning = await host.run(
        "function handler() { while (true) {} }", {}, timeout=0.5, memory_mb=64
    )
    assert spinning.status is RunStatus.TIMED_OUT


async def test_a_compile_error_names_its_line_from_any_thread(host: JsProcess) -> None:
    with pytest.raises(CompileError) as refused:
        await asyncio.to_thread(host.check, "function handler() {}\nlet = = 1")
    assert refused.value.line == 2
    await asyncio.gather(
        *(asyncio.to_thread(host.check, "function handler() {}") for _ in range(8))
    )


async def test_a_host_that_dies_fails_its_calls_and_the_next_call_starts_another(
    host: JsProcess,
) -> None:
    spinning = asyncio.ensure_future(
        host.run("function handler() { while (true) {} }", {}, timeout=PATIENCE, memory_mb=64)
    )
    first = await until(lambda: host.pid)
    os.kill(first, signal.SIGKILL)
    outcome = await asyncio.wait_for(spinning, PATIENCE)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error["message"] == "the JS runtime stopped during the call: killed by SIGKILL"
    again = await host.run("function handler() { return 1 }", {}, timeout=PATIENCE, memory_mb=64)
    assert again.result == 1
    assert host.pid not in (None, first)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_an_idle_host_ends_and_the_next_call_starts_another() -> None:
    host = JsProcess(idle=0.2)
    try:
        assert (
            await host.run("function handler() { return 1 }", {}, timeout=PATIENCE, memory_mb=64)
        ).result == 1
        first = host.pid
        assert first is not None
        await until(lambda: host.pid is None and _gone(first))
        assert (
            await host.run("function handler() { return 2 }", {}, timeout=PATIENCE, memory_mb=64)
        ).result == 2
        assert host.pid not in (None, first)
    finally:
        await host.close()


async def test_calls_start_no_thread(host: JsProcess) -> None:
    """A host has its reader and its idle watch; a call starts no thread of its own (an idle
    timer started after each call once cost every call about 2 ms)."""

    async def once() -> None:
        outcome = await host.run(
            "function handler() { return 1 }", {}, timeout=PATIENCE, memory_mb=64
        )
        assert outcome.result == 1

    await once()
    # The threads themselves, not their idents, which a new thread may reuse.
    started = set(threading.enumerate())
    for _ in range(5):
        await once()
    new = [thread for thread in threading.enumerate() if thread not in started]
    assert not [t for t in new if isinstance(t, threading.Timer) or t.name.startswith("shipway-js")]


async def test_a_call_in_flight_keeps_the_host_and_a_cancelled_one_lets_it_go() -> None:
    host = JsProcess(idle=0.2)
    try:
        waiting = asyncio.ensure_future(
            host.run(
                "async function handler() { await new Promise(() => {}) }",
                {},
                timeout=PATIENCE,
                memory_mb=64,
            )
        )
        pid = await until(lambda: host.pid)
        await asyncio.sleep(0.5)  # longer than IDLE: the call in flight keeps the host
        assert host.pid == pid and not _gone(pid)
        waiting.cancel()
        await until(lambda: host.pid is None and _gone(pid))
    finally:
        await host.close()


async def test_a_host_that_cannot_start_is_a_failed_call_and_a_service_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process.sys, "executable", "/nonexistent/python")
    host = JsProcess()
    outcome = await host.run("function handler() {}", {}, timeout=PATIENCE, memory_mb=64)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None and "cannot start the JS runtime" in outcome.error["message"]
    with pytest.raises(ServiceError, match="cannot start the JS runtime"):
        host.check("function handler() {}")
