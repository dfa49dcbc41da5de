"""The JS runtime against the real V8: results, errors, isolation, limits, shipway.call."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shipway.functions.outcome import CompileError, Outcome, RunStatus
from shipway.functions.runtimes.js import runtime as js_runtime
from shipway.functions.runtimes.js.runtime import MAX_LOG_LINES, MAX_SOURCE_BYTES, JsRuntime, check

#: A generous bound on anything that should end at once, or at a 1 s timeout.
PATIENCE = 10.0

EVENT: dict[str, Any] = {
    "params": {"x": 21},
    "env": {"GREETING": "hello"},
    "trigger": "http",
    "run_id": "run-1",
}


@pytest.fixture(scope="module")
async def runtime() -> AsyncIterator[JsRuntime]:
    rt = JsRuntime(max_workers=4, warm=2)
    yield rt
    await rt.close()


async def run(
    runtime: JsRuntime,
    source: str,
    event: dict[str, Any] | None = None,
    *,
    timeout: float = 5.0,
    memory_mb: int = 128,
    **kwargs: Any,
) -> Outcome:
    return await runtime.run(source, event or EVENT, timeout=timeout, memory_mb=memory_mb, **kwargs)


def error_of(outcome: Outcome, status: RunStatus = RunStatus.FAILED) -> dict[str, Any]:
    """OUTCOME's error, once it is checked that the call ended with STATUS."""
    assert outcome.status is status, outcome
    assert outcome.error is not None
    return outcome.error


async def still_works(runtime: JsRuntime) -> None:
    outcome = await run(runtime, "function handler(e) { return e.params.x * 2 }")
    assert outcome.status is RunStatus.SUCCEEDED and outcome.result == 42


# check


async def test_check_accepts_plain_async_and_arrow_handlers(runtime: JsRuntime) -> None:
    accepted = {
        "function handler(event) { return event.params }": {"x": 21},
        "async function handler(event) { return 1 }": 1,
        "const handler = async (event) => ({ok: true});": {"ok": True},
    }
    for source, result in accepted.items():
        check(source)
        outcome = await run(runtime, source)
        assert outcome.status is RunStatus.SUCCEEDED and outcome.result == result, source


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(CompileError) as caught:
        check("function handler(event) {\n  return 1;\n}}\n")
    assert caught.value.line == 3
    assert caught.value.message == "SyntaxError: Unexpected token '}' at line 3"
    assert caught.value.details == {"line": 3}


def test_a_syntax_error_on_the_first_line() -> None:
    with pytest.raises(CompileError) as caught:
        check("function handler( { return 1 }")
    assert caught.value.line == 1
    assert caught.value.message.startswith("SyntaxError: ")


def test_code_without_a_handler_is_refused() -> None:
    with pytest.raises(CompileError, match="defines no function `handler`"):
        check("function main(event) { return 1 }")
    with pytest.raises(CompileError, match="`handler` is a number, not a function"):
        check("var handler = 3;")


def test_top_level_code_that_throws_is_refused_with_its_line() -> None:
    with pytest.raises(CompileError) as caught:
        check("const a = 1;\nundefinedThing.call();\nfunction handler() {}")
    assert caught.value.line == 2
    assert "ReferenceError: undefinedThing is not defined" in caught.value.message


async def test_checking_does_not_run_the_handler(runtime: JsRuntime) -> None:
    endless = "function handler() { while (true) {} }"
    check(endless)
    # Running the handler never ends: check could only return because it did not run it.
    outcome = await run(runtime, endless, timeout=0.5)
    assert outcome.status is RunStatus.TIMED_OUT


def test_top_level_code_that_never_finishes_is_stopped() -> None:
    started = time.monotonic()
    with pytest.raises(CompileError, match=r"did not finish within 1 s"):
        check("while (true) {}\nfunction handler() {}")
    assert time.monotonic() - started < PATIENCE


def test_top_level_code_that_eats_memory_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    # The memory limit, not the time limit, must stop it, however slow a loaded machine is.
    monkeypatch.setattr(js_runtime, "CHECK_TIMEOUT", 60.0)
    with pytest.raises(CompileError, match="exceeded the 128 MiB memory limit"):
        check("let a = []; while (true) a.push(new Array(1e6).fill(1));")


def test_oversized_code_is_refused() -> None:
    source = "function handler() {}\n//" + "x" * MAX_SOURCE_BYTES
    with pytest.raises(CompileError, match="at most"):
        check(source)


async def test_check_can_be_called_from_a_coroutine() -> None:
    await asyncio.to_thread(check, "function handler() {}")
    check("function handler() {}")
    with pytest.raises(CompileError, match="defines no function `handler`"):
        check("function main() {}")


# results


async def test_a_plain_handler_returns_its_result(runtime: JsRuntime) -> None:
    outcome = await run(runtime, "function handler(event) { return event.params.x * 2 }")
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result == 42
    assert outcome.error is None
    assert outcome.duration > 0


async def test_an_async_handler_resolves_to_its_result(runtime: JsRuntime) -> None:
    source = """
    async function handler(event) {
      await null;
      return {params: event.params, env: event.env, trigger: event.trigger, run: event.run_id,
              list: [1, "two", null, true, {deep: [3.5]}]};
    }
    """
    outcome = await run(runtime, source)
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result == {
        "params": {"x": 21},
        "env": {"GREETING": "hello"},
        "trigger": "http",
        "run": "run-1",
        "list": [1, "two", None, True, {"deep": [3.5]}],
    }


async def test_undefined_is_none(runtime: JsRuntime) -> None:
    for source in ("function handler() {}", "async function handler() { return undefined }"):
        outcome = await run(runtime, source)
        assert outcome.status is RunStatus.SUCCEEDED
        assert outcome.result is None


async def test_the_event_is_data_never_code(runtime: JsRuntime) -> None:
    tricky = '"); globalThis.pwned = true; ("\\\u2028\u2029</script>${x}`\'\n\x00é🚀'
    event = {**EVENT, "params": {"s": tricky}}
    outcome = await run(runtime, "function handler(e) { return [e.params.s, typeof pwned] }", event)
    assert outcome.result == [tricky, "undefined"]


async def test_timers_work(runtime: JsRuntime) -> None:
    source = """
    async function handler() {
      await new Promise(resolve => setTimeout(resolve, 0));
      await new Promise(resolve => setTimeout(resolve, 20));
      return "woke";
    }
    """
    outcome = await run(runtime, source)
    assert outcome.status is RunStatus.SUCCEEDED and outcome.result == "woke"


# errors


async def test_a_throw_fails_with_message_and_stack(runtime: JsRuntime) -> None:
    source = "function handler() {\n  throw new TypeError('bad input');\n}"
    outcome = await run(runtime, source)
    error = error_of(outcome)
    assert error["message"] == "bad input"
    assert error["stack"].startswith("TypeError: bad input\n    at handler (function.js:2:")
    assert "shipway:host" not in error["stack"]


async def test_a_rejection_fails_with_message_and_stack(runtime: JsRuntime) -> None:
    source = "async function handler() {\n  await null;\n  throw new Error('later');\n}"
    outcome = await run(runtime, source)
    error = error_of(outcome)
    assert error["message"] == "later"
    assert "function.js:3:" in error["stack"]


async def test_throwing_a_non_error(runtime: JsRuntime) -> None:
    outcome = await run(runtime, "async function handler() { throw 'just a string' }")
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == {"message": "just a string", "stack": None}


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("() => 1", "it is a function"),
        ("{n: 10n}", '"n" holds a bigint'),
        ("(() => { const a = {}; a.self = a; return a })()", "circular structure"),
    ],
)
async def test_a_result_that_is_not_json_fails(
    runtime: JsRuntime, expression: str, why: str
) -> None:
    outcome = await run(runtime, f"function handler() {{ return {expression} }}")
    error = error_of(outcome)
    assert error["message"].startswith("the result is not JSON-serialisable: ")
    assert why in error["message"]


async def test_a_syntax_error_at_run_time_fails(runtime: JsRuntime) -> None:
    outcome = await run(runtime, "function handler() {\n  return 1 +;\n}")
    error = error_of(outcome)
    assert error["message"] == "SyntaxError: Unexpected token ';' at line 2"


async def test_missing_handler_at_run_time_fails(runtime: JsRuntime) -> None:
    outcome = await run(runtime, "const nothing = 1;")
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == {"message": "the code defines no function `handler`", "stack": None}


# isolation


async def test_globals_do_not_leak_between_calls(runtime: JsRuntime) -> None:
    source = """
    var counter = (globalThis.counter || 0) + 1;
    async function handler() {
      const seen = [typeof globalThis.leaked, typeof Array.prototype.leaked, counter];
      globalThis.leaked = "secret";
      Array.prototype.leaked = 1;
      JSON.stringify = () => "tampered";
      return seen;
    }
    """
    for _ in range(3):
        outcome = await run(runtime, source)
        assert outcome.status is RunStatus.SUCCEEDED
        assert outcome.result == ["undefined", "undefined", 1]


async def test_no_network_files_or_processes(runtime: JsRuntime) -> None:
    source = """
    function handler() {
      return [typeof fetch, typeof require, typeof process, typeof XMLHttpRequest,
              typeof Deno, typeof Bun, typeof module, typeof importScripts];
    }
    """
    outcome = await run(runtime, source)
    assert outcome.result == ["undefined"] * 8
    used = await run(runtime, "async function handler() { return await fetch('http://x') }")
    error = error_of(used)
    assert error["message"] == "fetch is not defined"


# console


async def test_console_lines_are_captured_in_order(runtime: JsRuntime) -> None:
    source = """
    console.log("loading");
    async function handler(event) {
      console.log("hello", event.params.x, {a: [1, 2]}, null, undefined, 5n);
      await null;
      console.info("info");
      console.warn("warn", true);
      console.error(new Error("oops"));
      return 1;
    }
    """
    outcome = await run(runtime, source)
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.logs[:5] == [
        "loading",
        'hello 21 {"a":[1,2]} null undefined 5n',
        "info",
        "warn true",
        "Error: oops",
    ]
    assert outcome.logs[5].startswith("    at handler (function.js:")


async def test_console_output_is_capped(runtime: JsRuntime) -> None:
    source = "function handler() { for (let i = 0; i < 5000; i++) console.log('line', i) }"
    outcome = await run(runtime, source)
    assert outcome.status is RunStatus.SUCCEEDED
    assert len(outcome.logs) == MAX_LOG_LINES + 1
    assert outcome.logs[0] == "line 0"
    assert outcome.logs[MAX_LOG_LINES - 1] == f"line {MAX_LOG_LINES - 1}"
    assert "truncated" in outcome.logs[-1]

    huge = await run(runtime, "function handler() { console.log('x'.repeat(1e6)) }")
    assert len(huge.logs) == 1 and "truncated" in huge.logs[0]


async def test_logs_before_an_error_are_kept(runtime: JsRuntime) -> None:
    outcome = await run(
        runtime, "async function handler() { console.log('before'); await null; throw 1 }"
    )
    assert outcome.status is RunStatus.FAILED
    assert outcome.logs == ["before"]


# time


@pytest.mark.parametrize(
    "source",
    [
        "function handler() { while (true) {} }",
        "async function handler() { await null; while (true) {} }",
        "async function handler() { await new Promise(() => {}) }",
        "async function handler() { await new Promise(r => setTimeout(() => { for (;;); }, 1)) }",
        "while (true) {}\nfunction handler() {}",
    ],
    ids=["loop", "loop-after-await", "never-resolves", "loop-in-timer", "top-level-loop"],
)
async def test_a_call_that_runs_too_long_times_out(runtime: JsRuntime, source: str) -> None:
    started = time.monotonic()
    outcome = await run(runtime, source, timeout=1.0)
    elapsed = time.monotonic() - started
    error = error_of(outcome, RunStatus.TIMED_OUT)
    assert error["message"] == "the function ran past its 1 s timeout"
    assert 0.9 <= outcome.duration < PATIENCE and elapsed < PATIENCE
    await still_works(runtime)


async def test_logs_before_a_timeout_are_kept(runtime: JsRuntime) -> None:
    source = "async function handler() { console.log('started'); await new Promise(() => {}) }"
    outcome = await run(runtime, source, timeout=0.5)
    assert outcome.status is RunStatus.TIMED_OUT
    assert outcome.logs == ["started"]


async def test_a_runaway_handler_does_not_block_the_event_loop(runtime: JsRuntime) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        outcome = await run(runtime, "function handler() { while (true) {} }", timeout=1.0)
    finally:
        ticker.cancel()
    assert outcome.status is RunStatus.TIMED_OUT
    assert ticks >= 10


# memory


@pytest.mark.parametrize(
    "source",
    [
        "function handler() { let a = []; while (true) a.push(new Array(1e6).fill(1)) }",
        "async function handler() { await null; const a = []; while (true) a.push({a: [1]}) }",
        "let a = []; while (true) a.push('x'.repeat(1e5) + a.length);\nfunction handler() {}",
    ],
    ids=["arrays", "objects-after-await", "top-level-strings"],
)
async def test_a_call_that_eats_memory_fails_naming_the_limit(
    runtime: JsRuntime, source: str
) -> None:
    outcome = await run(runtime, source, timeout=30.0, memory_mb=128)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error == {
        "message": "the function exceeded its 128 MiB memory limit",
        "stack": None,
    }
    await still_works(runtime)


async def test_a_handler_within_its_memory_limit_succeeds(runtime: JsRuntime) -> None:
    source = "function handler() { const a = new Array(1e6).fill(1); return a.length }"
    outcome = await run(runtime, source, memory_mb=64)
    assert outcome.status is RunStatus.SUCCEEDED and outcome.result == 1_000_000


MIB = 1 << 20
BUFFER_HOGS = {
    "array-buffers": "const k = []; while (true) k.push(new ArrayBuffer(32 * MIB))",
    "typed-arrays": "const k = []; while (true) k.push(new Float64Array(4 * MIB))",
    "from-array-like": "return Uint8Array.from({length: 512 * MIB})",
    "array-like": "return new Uint8Array({length: 512 * MIB})",
    "subclass": "class Big extends Uint8Array {}; return new Big(512 * MIB)",
    "slice": "const a = new Uint8Array(32 * MIB), k = []; while (true) k.push(a.slice())",
    "map": "const a = new Uint8Array(32 * MIB), k = []; while (true) k.push(a.map(x => x))",
    "to-reversed": "const a = new Uint8Array(32 * MIB), k = []; for (;;) k.push(a.toReversed())",
    "resizable": "return new ArrayBuffer(1, {maxByteLength: 512 * MIB})",
    "transfer": "return new ArrayBuffer(8).transfer(512 * MIB)",
    "buffer-slice": "const b = new ArrayBuffer(32 * MIB), k = []; while (true) k.push(b.slice(0))",
    "shared": "const k = []; while (true) k.push(new SharedArrayBuffer(32 * MIB))",
}


@pytest.mark.parametrize("body", BUFFER_HOGS.values(), ids=BUFFER_HOGS.keys())
async def test_memory_outside_the_heap_counts_against_the_limit(
    runtime: JsRuntime, body: str
) -> None:
    source = f"const MIB = 1 << 20;\nfunction handler() {{ {body} }}\n"
    outcome = await run(runtime, source, timeout=30.0, memory_mb=128)
    message = error_of(outcome)["message"]
    assert message == (
        "the function exceeded its 128 MiB memory limit (held by ArrayBuffers and typed arrays)"
    )
    await still_works(runtime)


async def test_buffers_within_the_limit_work_as_usual(runtime: JsRuntime) -> None:
    source = """
      async function handler() {
        const a = new Uint8Array([1, 2, 3]), view = new DataView(new ArrayBuffer(8));
        view.setFloat64(0, 1.5);
        const b = Uint8Array.from([4, 5]), c = new Uint8Array(a.buffer, 1);
        let churned = 0;
        for (let i = 0; i < 64; i++) {  // 256 MiB in all, 4 MiB at a time, freed as it goes
          churned += new Uint8Array(4 << 20).length;
          await new Promise(resolve => setTimeout(resolve, 1));
        }
        return [a instanceof Uint8Array, a.constructor === Uint8Array, Uint8Array.name,
                Float64Array.BYTES_PER_ELEMENT, view.getFloat64(0), [...b], [...c],
                [...a.slice(1)], [...a.toReversed()], churned >> 20,
                typeof WebAssembly, typeof SharedArrayBuffer];
      }
    """
    outcome = await run(runtime, source, timeout=30.0, memory_mb=128)
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert outcome.result == [
        True, True, "Uint8Array", 8, 1.5, [4, 5], [2, 3], [2, 3], [3, 2, 1], 256,
        "undefined", "function",
    ]  # fmt: skip


async def test_a_larger_memory_limit_allows_larger_buffers(runtime: JsRuntime) -> None:
    source = "function handler() { return new Uint8Array(200 << 20).length >> 20 }"
    assert error_of(await run(runtime, source, memory_mb=128))["message"].startswith(
        "the function exceeded its 128 MiB"
    )
    outcome = await run(runtime, source, memory_mb=256)
    assert outcome.status is RunStatus.SUCCEEDED and outcome.result == 200


# shipway.call


async def test_shipway_call_resolves_with_the_callees_result(runtime: JsRuntime) -> None:
    calls: list[tuple[str, Any]] = []

    async def call(name: str, params: Any) -> Any:
        calls.append((name, params))
        await asyncio.sleep(0.01)
        return {"from": name, "doubled": params["x"] * 2}

    source = """
    async function handler(event) {
      const [a, b] = await Promise.all([
        shipway.call("double", {x: event.params.x}),
        shipway.call("double", {x: 1}),
      ]);
      const c = await shipway.call("double", {x: a.doubled});
      return [a, b, c];
    }
    """
    outcome = await run(runtime, source, call=call)
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result == [
        {"from": "double", "doubled": 42},
        {"from": "double", "doubled": 2},
        {"from": "double", "doubled": 84},
    ]
    assert calls == [("double", {"x": 21}), ("double", {"x": 1}), ("double", {"x": 42})]


async def test_shipway_call_rejects_with_the_callees_error(runtime: JsRuntime) -> None:
    async def call(name: str, params: Any) -> Any:
        raise LookupError(f"no function called {name}")

    source = """
    async function handler() {
      try {
        await shipway.call("missing", {});
      } catch (e) {
        return [e instanceof Error, e.message];
      }
    }
    """
    outcome = await run(runtime, source, call=call)
    assert outcome.result == [True, "no function called missing"]

    unhandled = await run(
        runtime, "async function handler() { await shipway.call('missing', {}) }", call=call
    )
    error = error_of(unhandled)
    assert error["message"] == "no function called missing"


async def test_shipway_call_is_unavailable_without_a_callback(runtime: JsRuntime) -> None:
    outcome = await run(runtime, "async function handler() { return await shipway.call('x') }")
    error = error_of(outcome)
    assert error["message"] == "calling other functions is not available here"


async def test_a_slow_callee_counts_against_the_timeout(runtime: JsRuntime) -> None:
    cancelled = asyncio.Event()

    async def call(name: str, params: Any) -> Any:
        try:
            await asyncio.sleep(PATIENCE)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    outcome = await run(
        runtime, "async function handler() { await shipway.call('slow') }", timeout=0.5, call=call
    )
    assert outcome.status is RunStatus.TIMED_OUT
    await asyncio.wait_for(cancelled.wait(), PATIENCE)


# concurrency


async def test_sixteen_concurrent_calls(runtime: JsRuntime) -> None:
    source = """
    globalThis.mine = globalThis.mine || [];
    async function handler(event) {
      mine.push(event.params.i);
      await new Promise(resolve => setTimeout(resolve, 10));
      return {i: event.params.i, seen: mine};
    }
    """
    outcomes = await asyncio.gather(
        *(run(runtime, source, {**EVENT, "params": {"i": i}}) for i in range(16))
    )
    for i, outcome in enumerate(outcomes):
        assert outcome.status is RunStatus.SUCCEEDED
        assert outcome.result == {"i": i, "seen": [i]}


# The JS host checks code in threads, as new isolates are made while others run JS; a V8 that
# a thread other than the main one set up crashes the process then. The checks get all the time
# they need: a loaded machine must not make them fail for slowness, which is not what is tested.
_CHECKS_IN_THREADS = """
import threading
from shipway.functions.runtimes.js import runtime

runtime.CHECK_TIMEOUT = 60.0

SOURCE = "let n = 0; for (let i = 0; i < 1e4; i++) n += i; function handler() {}"

def checks():
    for _ in range(40):
        runtime.check(SOURCE)

threads = [threading.Thread(target=checks) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("checked")
"""


def test_checks_in_many_threads_at_once_do_not_crash_the_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHECKS_IN_THREADS], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout) == (0, "checked\n"), done.stderr[-2000:]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
async def test_every_isolate_is_closed() -> None:
    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    before = threads()
    rt = JsRuntime(max_workers=2, warm=2)
    sources = [
        ("function handler() { return 1 }", PATIENCE),
        ("function handler() { while (true) {} }", 0.5),
        ("async function handler() { await new Promise(() => {}) }", 0.5),
        ("function handler() { let a = []; while (true) a.push(new Array(1e6).fill(1)) }", 30),
    ]
    outcomes = await asyncio.gather(
        *(run(rt, source, timeout=timeout) for source, timeout in sources * 6)
    )
    assert {o.status for o in outcomes} == {
        RunStatus.SUCCEEDED,
        RunStatus.TIMED_OUT,
        RunStatus.FAILED,
    }
    await rt.close()
    # Twenty-four calls leaked would be two dozen threads; allow for the module's runtime,
    # which may be topping up its own warm pool meanwhile.
    assert threads() <= before + 2
