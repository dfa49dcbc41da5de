"""Python functions: compile errors on deploy, and calls run in forks of a real sandboxed worker
that nothing a call does (loops, hogs, bombs, killing it) leaves broken or leaking."""

from __future__ import annotations

import asyncio
import builtins
import os
import signal
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio

from shipway.functions.outcome import CompileError, Outcome, RunStatus
from shipway.functions.runtimes.python.runtime import (
    MAX_SOURCE,
    PythonRuntime,
    WorkerUnavailable,
    check,
)
from shipway.sandbox import Limits, SandboxError
from tests.conftest import unavailable

#: A generous bound on how long a call that should end at once may take.
PATIENCE = 30.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def runtime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PythonRuntime]:
    """One runtime for the module, as in shipway: every test also shows the worker survived
    the tests before it."""
    python = PythonRuntime(tmp_path_factory.mktemp("python"))
    try:
        await python.start()
    except (WorkerUnavailable, SandboxError) as e:
        unavailable(f"cannot start the Python worker here: {e}")
    yield python
    await python.close()


async def run(
    runtime: PythonRuntime,
    source: str,
    params: Any = None,
    *,
    timeout: float = PATIENCE,
    memory_mb: int = 128,
    **options: Any,
) -> Outcome:
    event = {"params": params, "env": {}, "trigger": "http", "run_id": 1}
    code = textwrap.dedent(source)
    return await runtime.run(code, event, timeout=timeout, memory_mb=memory_mb, **options)


async def succeeded(runtime: PythonRuntime, source: str, params: Any = None, **options: Any) -> Any:
    outcome = await run(runtime, source, params, **options)
    assert outcome.status is RunStatus.SUCCEEDED, outcome
    return outcome.result


async def failure(runtime: PythonRuntime, source: str, **options: Any) -> str:
    """The error message of a call that must fail."""
    outcome = await run(runtime, source, **options)
    assert outcome.status is RunStatus.FAILED, outcome
    assert outcome.error is not None
    return str(outcome.error["message"])


async def still_serves(runtime: PythonRuntime) -> None:
    result = await succeeded(runtime, "def handler(event):\n    return 'still here'\n")
    assert result == "still here"


def worker_processes() -> list[psutil.Process]:
    """The worker (not its calls) among this test process's descendants."""
    worker, found = "/run/fn/forkserver.py", []
    for proc in psutil.Process().children(recursive=True):
        try:
            parent = proc.parent()
            if worker in proc.cmdline() and parent and worker not in parent.cmdline():
                found.append(proc)
        except psutil.Error:
            continue
    return found


# -- compiling on deploy ----------------------------------------------------------------------


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(CompileError) as raised:
        check("import os\n\ndef handler(event)\n    return 1\n")
    assert raised.value.line == 3
    assert raised.value.message.startswith("SyntaxError: ")
    assert raised.value.message.endswith(" at line 3")


def test_an_indentation_error_names_its_line() -> None:
    with pytest.raises(CompileError) as raised:
        check("def handler(event):\nreturn 1\n")
    assert raised.value.line == 2
    assert raised.value.message.startswith("IndentationError: ")


def test_errors_of_the_compiler_count_too() -> None:
    with pytest.raises(CompileError) as raised:
        check("def handler(event):\n    pass\nreturn 5\n")
    assert raised.value.line == 3


def test_code_without_a_top_level_handler_is_refused() -> None:
    with pytest.raises(CompileError, match="no top-level `def handler"):
        check("def main(event):\n    return 1\n")
    with pytest.raises(CompileError, match="no top-level"):
        check("class Box:\n    def handler(self, event):\n        return 1\n")


def test_sync_and_async_handlers_compile_without_running() -> None:
    check("raise SystemExit('never run')\ndef handler(event):\n    return 1\n")
    check("async def handler(event):\n    return 1\n")
    check("import builtins\nbuiltins.shipway_ran = True\ndef handler(event):\n    return 1\n")
    assert not hasattr(builtins, "shipway_ran")


def test_code_over_a_mebibyte_is_refused() -> None:
    body = "# " + "x" * MAX_SOURCE + "\ndef handler(event):\n    return 1\n"
    with pytest.raises(CompileError, match="larger than 1 MiB"):
        check(body)


# -- results and errors -------------------------------------------------------------------------


async def test_a_sync_handler_returns_json(runtime: PythonRuntime) -> None:
    outcome = await run(
        runtime,
        """
        def handler(event):
            return {"doubled": event["params"]["x"] * 2, "trigger": event["trigger"]}
        """,
        {"x": 21},
    )
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result == {"doubled": 42, "trigger": "http"}
    assert outcome.error is None
    assert 0 < outcome.duration < PATIENCE


async def test_an_async_handler_is_awaited(runtime: PythonRuntime) -> None:
    source = """
        import asyncio

        async def handler(event):
            await asyncio.sleep(0.01)
            return [event["run_id"], "awaited"]
    """
    assert await succeeded(runtime, source) == [1, "awaited"]


async def test_an_exception_fails_with_message_and_stack(runtime: PythonRuntime) -> None:
    outcome = await run(
        runtime,
        """
        def check(x):
            raise ValueError("boom")

        def handler(event):
            check(1)
        """,
    )
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error["message"] == "ValueError: boom"
    stack = outcome.error["stack"]
    assert stack.startswith('Traceback (most recent call last):\n  File "handler.py"')
    assert 'raise ValueError("boom")' in stack
    assert "in check" in stack
    assert "forkserver" not in stack


async def test_an_error_while_loading_fails_the_call(runtime: PythonRuntime) -> None:
    message = await failure(runtime, "import no_such_module\ndef handler(event):\n    return 1\n")
    assert message == "ModuleNotFoundError: No module named 'no_such_module'"


async def test_a_result_that_is_not_json_fails_clearly(runtime: PythonRuntime) -> None:
    message = await failure(runtime, "def handler(event):\n    return {1, 2}\n")
    assert message.startswith("the handler's return value is not JSON: ")
    assert "set" in message


async def test_exiting_instead_of_returning_fails(runtime: PythonRuntime) -> None:
    message = await failure(runtime, "import sys\ndef handler(event):\n    sys.exit(3)\n")
    assert message == "SystemExit: 3"
    message = await failure(runtime, "import os\ndef handler(event):\n    os._exit(4)\n")
    assert message == "the function's process exited with code 4 before returning"


# -- output -------------------------------------------------------------------------------------


async def test_print_and_stderr_are_captured_in_order(runtime: PythonRuntime) -> None:
    outcome = await run(
        runtime,
        """
        import os, sys

        def handler(event):
            print("one")
            sys.stderr.write("two\\n")
            print("three", "3", sep=":")
            os.system("echo four")
            print("five", end="")
            return None
        """,
    )
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.logs == ["one", "two", "three:3", "four", "five"]


async def test_output_is_cut_at_a_thousand_lines(runtime: PythonRuntime) -> None:
    outcome = await run(
        runtime, "def handler(event):\n    for i in range(5000):\n        print(i)\n"
    )
    assert outcome.status is RunStatus.SUCCEEDED
    assert len(outcome.logs) == 1001
    assert outcome.logs[:2] == ["0", "1"]
    assert outcome.logs[-1].startswith("[output cut")


# -- nothing leaks from one call to the next ----------------------------------------------------


async def test_module_state_does_not_leak(runtime: PythonRuntime) -> None:
    source = """
        import json, os, random, sys

        calls = 0

        def handler(event):
            global calls
            calls += 1
            seen = {
                "calls": calls,
                "marked": hasattr(json, "marked"),
                "env": os.environ.get("LEFT_BEHIND"),
                "modules": "wave" in sys.modules,
                "random": random.random(),
            }
            json.marked = True
            os.environ["LEFT_BEHIND"] = "yes"
            import wave
            return seen
    """
    first = await succeeded(runtime, source)
    second = await succeeded(runtime, source)
    for seen in (first, second):
        assert seen["calls"] == 1
        assert seen["marked"] is False
        assert seen["env"] is None
        assert seen["modules"] is False
    assert first["random"] != second["random"]


async def test_files_do_not_leak(runtime: PythonRuntime) -> None:
    source = """
        import os, tempfile

        def handler(event):
            places = [
                "/tmp/left.txt", os.path.join(tempfile.gettempdir(), "left.txt"),
                "/dev/shm/left.txt", "/workspace/left.txt", os.path.expanduser("~/left.txt"),
            ]
            found = [p for p in places if os.path.exists(p)]
            for place in places:
                with open(place, "w") as f:
                    f.write("from an earlier call")
            return {"found": found, "tmp": tempfile.gettempdir(), "cwd": os.getcwd()}
    """
    first = await succeeded(runtime, source)
    second = await succeeded(runtime, source)
    assert first["found"] == [] and second["found"] == []
    assert first["tmp"].startswith("/tmp/") and first["tmp"] != second["tmp"]
    assert first["cwd"] == first["tmp"]


# -- limits -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ["while True:\n        pass", "import time\n    time.sleep(100)"],
    ids=["loop", "sleep"],
)
async def test_a_call_past_its_timeout_is_killed(runtime: PythonRuntime, body: str) -> None:
    outcome = await run(
        runtime, f"def handler(event):\n    print('started')\n    {body}\n", timeout=1
    )
    assert outcome.status is RunStatus.TIMED_OUT
    assert outcome.error == {"message": "the function ran past its 1 s timeout", "stack": None}
    assert outcome.logs == ["started"]
    assert 1 <= outcome.duration < PATIENCE
    await still_serves(runtime)


@pytest.mark.parametrize(
    "body",
    ["x = bytearray(1024 * 2**20)", "hog = []\n    while True:\n        hog.append(b'x' * 2**20)"],
    ids=["at-once", "growing"],
)
async def test_a_memory_hog_fails_naming_the_limit(runtime: PythonRuntime, body: str) -> None:
    message = await failure(runtime, f"def handler(event):\n    {body}\n", memory_mb=128)
    assert "128 MiB memory limit" in message
    await still_serves(runtime)


async def test_small_allocations_fit_the_limit(runtime: PythonRuntime) -> None:
    source = "def handler(event):\n    return len(bytearray(64 * 2**20))\n"
    assert await succeeded(runtime, source, memory_mb=128) == 64 * 2**20


async def test_a_fork_bomb_is_contained(runtime: PythonRuntime) -> None:
    source = """
        import os

        def handler(event):
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
    """
    bomb = asyncio.create_task(run(runtime, source, timeout=3))
    await asyncio.sleep(1)
    await still_serves(runtime)
    outcome = await bomb
    assert outcome.status is RunStatus.TIMED_OUT
    await still_serves(runtime)
    await nothing_left_behind(runtime)


async def test_processes_a_call_leaves_behind_are_killed(runtime: PythonRuntime) -> None:
    source = """
        import subprocess

        def handler(event):
            subprocess.Popen(["sleep", "1000"], start_new_session=True)
            subprocess.Popen(["sh", "-c", "sleep 1000 & sleep 1000"])
            return "left"
    """
    assert await succeeded(runtime, source) == "left"
    await nothing_left_behind(runtime)


async def nothing_left_behind(runtime: PythonRuntime) -> None:
    """Soon, the sandbox holds only bubblewrap's init, the worker and the call looking."""
    source = """
        import os

        def handler(event):
            return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    """
    for _ in range(int(PATIENCE / 0.1)):
        pids = await succeeded(runtime, source)
        if len(pids) <= 3:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"processes left in the sandbox: {pids}")


# -- what a call cannot reach -------------------------------------------------------------------


async def test_there_is_no_network(runtime: PythonRuntime) -> None:
    source = """
        import socket, urllib.request

        def handler(event):
            failed = []
            try:
                socket.create_connection(("1.1.1.1", 53), timeout=5)
            except OSError as e:
                failed.append(type(e).__name__)
            try:
                urllib.request.urlopen("http://example.com/", timeout=5)
            except OSError as e:
                failed.append(type(e).__name__)
            return failed
    """
    assert len(await succeeded(runtime, source)) == 2


async def test_host_files_are_out_of_reach(runtime: PythonRuntime, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "shipway.db").write_text("secret")
    source = """
        import os

        def handler(event):
            errors = {}
            for path in event["params"]["read"]:
                try:
                    with open(path) as f:
                        errors[path] = f.read()
                except OSError as e:
                    errors[path] = type(e).__name__
            for path in event["params"]["write"]:
                try:
                    with open(path, "w") as f:
                        f.write("x")
                    errors[path] = "written"
                except OSError as e:
                    errors[path] = type(e).__name__
            return errors
    """
    read = [str(data / "shipway.db"), "/root/.bashrc", "/etc/shadow"]
    write = ["/usr/evil", "/etc/evil", "/evil", "/run/fn/evil", "/run/fn/forkserver.py"]
    errors = await succeeded(runtime, source, {"read": read, "write": write})
    assert set(errors) == {*read, *write}
    assert all(
        result in {"FileNotFoundError", "PermissionError", "OSError"} for result in errors.values()
    ), errors


async def test_calls_cannot_read_the_workers_memory(runtime: PythonRuntime) -> None:
    source = """
        import os

        def handler(event):
            results = []
            for name in ("environ", "mem", "fd/0"):
                try:
                    with open(f"/proc/{os.getppid()}/{name}", "rb") as f:
                        f.read(1)
                    results.append("read")
                except OSError as e:
                    results.append(type(e).__name__)
            return results
    """
    assert await succeeded(runtime, source) == ["PermissionError"] * 3


async def test_env_is_in_os_environ(runtime: PythonRuntime) -> None:
    source = """
        import os

        def handler(event):
            return [os.environ.get("GREETING"), os.getenv("MODE")]
    """
    env = {"GREETING": "hello", "MODE": "test"}
    assert await succeeded(runtime, source, env=env) == ["hello", "test"]


# -- calling other functions --------------------------------------------------------------------


async def test_shipway_call_returns_the_other_functions_result(runtime: PythonRuntime) -> None:
    calls: list[tuple[str, Any]] = []

    async def call(name: str, params: Any) -> Any:
        calls.append((name, params))
        return {"from": name, "sum": sum(params["numbers"])}

    source = """
        import shipway

        def handler(event):
            return shipway.call("adder", {"numbers": [1, 2, 3]})
    """
    assert await succeeded(runtime, source, call=call) == {"from": "adder", "sum": 6}
    assert calls == [("adder", {"numbers": [1, 2, 3]})]


async def test_shipway_call_raises_the_remote_error(runtime: PythonRuntime) -> None:
    async def call(name: str, params: Any) -> Any:
        raise RuntimeError(f"{name} failed: ValueError: nope")

    source = """
        def handler(event):
            try:
                shipway.call("broken", None)
            except shipway.CallError as e:
                return str(e)
    """
    assert await succeeded(runtime, source, call=call) == "broken failed: ValueError: nope"
    message = await failure(
        runtime, "def handler(event):\n    shipway.call('broken', 1)\n", call=call
    )
    assert message == "CallError: broken failed: ValueError: nope"


async def test_shipway_call_without_a_caller_is_unavailable(runtime: PythonRuntime) -> None:
    message = await failure(
        runtime, "import shipway\ndef handler(event):\n    shipway.call('x', 1)\n"
    )
    assert message == "CallError: calling other functions is not available here"


# -- many calls, and a worker that dies ----------------------------------------------------------


async def test_sixteen_calls_run_at_once(runtime: PythonRuntime) -> None:
    # Each call marks its start in the worker's /tmp, which calls running together share, and
    # waits until all sixteen have: calls run one after another would never all see sixteen.
    source = """
        import os, time

        def handler(event):
            open(f"/tmp/began-{event['params']}", "w").close()
            deadline = time.monotonic() + 20
            while len([f for f in os.listdir("/tmp") if f.startswith("began-")]) < 16:
                if time.monotonic() > deadline:
                    return {"n": event["params"], "pid": os.getpid(), "all": False}
                time.sleep(0.01)
            return {"n": event["params"], "pid": os.getpid(), "all": True}
    """
    results = await asyncio.gather(*(succeeded(runtime, source, n) for n in range(16)))
    assert [r["n"] for r in results] == list(range(16))
    assert len({r["pid"] for r in results}) == 16
    assert all(r["all"] for r in results)


async def test_a_killed_worker_is_started_again(runtime: PythonRuntime) -> None:
    await still_serves(runtime)
    [worker] = worker_processes()
    # The sandbox dies with its supervisor, a moment after it: a call sent in that moment
    # may still be served by the old worker, so wait until all of it has gone.
    old = [worker, *worker.children(recursive=True)]
    worker.send_signal(signal.SIGKILL)
    _, alive = psutil.wait_procs(old, timeout=PATIENCE)
    assert not alive
    await still_serves(runtime)
    [again] = worker_processes()
    assert again.pid != worker.pid


async def test_a_call_that_kills_the_worker_fails_and_it_restarts(runtime: PythonRuntime) -> None:
    source = "import os, signal\ndef handler(event):\n    os.kill(os.getppid(), signal.SIGKILL)\n"
    message = await failure(runtime, source)
    assert message == "the Python worker stopped during the call"
    await still_serves(runtime)


async def test_the_worker_runs_unprivileged(runtime: PythonRuntime) -> None:
    source = "import os\ndef handler(event):\n    return [os.getuid(), os.geteuid()]\n"
    uid, euid = await succeeded(runtime, source)
    assert uid == euid != 0
    assert os.getuid() == 0 or uid == os.getuid()


async def test_large_events_and_results_pass_whole(runtime: PythonRuntime) -> None:
    text = "é" * 2**20  # 6 MiB as JSON
    source = "def handler(event):\n    return event['params'] + '!'\n"
    assert await succeeded(runtime, source, text) == text + "!"
    message = await failure(runtime, "def handler(event):\n    return 'x' * (9 * 2**20)\n")
    assert "larger than" in message


async def test_memory_is_capped_at_the_workers(tmp_path: Path) -> None:
    python = PythonRuntime(tmp_path, limits=Limits(memory_mb=256, processes=128))
    try:
        message = await failure(
            python, "def handler(event):\n    b'x' * (512 * 2**20)\n", memory_mb=4096
        )
        assert message == "MemoryError: the function ran past its 256 MiB memory limit"
        await still_serves(python)
    finally:
        await python.close()


async def test_a_closed_runtime_refuses_calls_until_started(tmp_path: Path) -> None:
    python = PythonRuntime(tmp_path)
    await python.start()
    await python.close()
    with pytest.raises(WorkerUnavailable, match="closed"):
        await run(python, "def handler(event):\n    return 1\n")
    await python.start()
    try:
        await still_serves(python)
    finally:
        await python.close()
