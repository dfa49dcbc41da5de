"""Everything that runs functions in one process: the two runtimes (Python: one worker per
function), the registry that keeps them on the current versions, and the invoker that records
each run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipway.apps.secretbox import SecretBox
from shipway.functions.invoke import Invoker
from shipway.functions.outcome import Call, Outcome
from shipway.functions.registry import Registry
from shipway.functions.runtimes.js import process
from shipway.functions.runtimes.python.pool import PythonWorkers
from shipway.store import Store

if TYPE_CHECKING:
    from shipway.functions.runtimes.js.runtime import JsRuntime


class _Js:
    """The JS runtime as a runner: the environment reaches the handler as event.env only.
    Unless given a RUNTIME (V8 in this process), calls go to a JS host of its own."""

    def __init__(self, runtime: JsRuntime | process.JsProcess | None = None) -> None:
        self.runtime = runtime or process.JsProcess()

    async def run(
        self,
        source: str,
        event: dict[str, Any],
        *,
        organization_id: int,
        function: str,
        timeout: float,
        memory_mb: int,
        call: Call | None,
        env: dict[str, str],
    ) -> Outcome:
        return await self.runtime.run(
            source, event, timeout=timeout, memory_mb=memory_mb, call=call
        )

    async def close(self) -> None:
        await self.runtime.close()


class FunctionWorker:
    def __init__(self, store: Store, data_dir: Path, js: Any) -> None:
        self.store = store
        self.js = js
        self.registry = Registry()
        self.js_runtime = _Js()
        # Each function's Python worker has its own scratch dir below this one: its sandbox
        # sees that (read-only), nothing else of DATA.
        self.python = PythonWorkers(data_dir / "run" / "python-functions")
        self.invoker = Invoker(
            store,
            self.registry,
            {"js": self.js_runtime, "python": self.python},
            SecretBox.load(data_dir),
            js,
        )

    async def start(self) -> None:
        """Follow the registry; the Python worker starts with the first Python call."""
        await self.registry.start(self.js)

    async def close(self) -> None:
        await self.invoker.settle()
        await self.registry.close()
        await self.python.close()
        await self.js_runtime.close()
