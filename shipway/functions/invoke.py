"""One function call, however it came: find the running version, record the run, run it in
its runtime, and let it call other functions (a pipeline), within a depth and without cycles.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from shipway.apps import config
from shipway.apps.secretbox import SecretBox
from shipway.errors import NotFound, ShipwayError
from shipway.functions import service
from shipway.functions.outcome import Call, Outcome, RunStatus
from shipway.functions.records import RunRecords
from shipway.functions.registry import Deployed, Registry
from shipway.logs import LogWriter
from shipway.store import Store
from shipway.store.tables import Function

log = logging.getLogger(__name__)

#: How deep functions may call functions.
MAX_DEPTH = 8


class Runner(Protocol):
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
    ) -> Outcome: ...


class CallRefused(ShipwayError):
    """Raised for a call a pipeline may not make: too deep, or back into itself."""

    code = "call_refused"


@dataclass(frozen=True)
class Chain:
    """The functions a call is nested in, outermost first, and the run that calls."""

    names: tuple[str, ...]
    run_id: int


@dataclass(frozen=True)
class Ran:
    run_id: int
    version: int
    outcome: Outcome


class Invoker:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        runners: dict[str, Runner],
        box: SecretBox,
        js: Any = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.runners = runners
        self.box = box
        self.js = js
        self.records = RunRecords(store)
        self._writing: set[asyncio.Task[None]] = set()

    async def invoke(
        self,
        organization_id: int,
        name: str,
        params: Any,
        *,
        trigger: str = "http",
        chain: Chain | None = None,
        deployed: Deployed | None = None,
    ) -> Ran:
        """Run NAME's current version (DEPLOYED, when the caller has found it already) with
        PARAMS; NotFound if there is no such function."""
        if chain is not None:
            _check_chain(chain, name)
        if deployed is None:
            deployed = await self.find(organization_id, name)
        runner = self.runners.get(deployed.runtime)
        if runner is None:
            raise ShipwayError(f"the {deployed.runtime} runtime is not available here")
        run_id = await self.records.start(
            deployed.function_id,
            deployed.version,
            trigger,
            params,
            chain.run_id if chain else None,
        )
        env = config.environment(deployed.environment, self.box)
        event = {"params": params, "env": env, "trigger": trigger, "run_id": run_id}
        names = (*(chain.names if chain else ()), name)

        async def call(other: str, other_params: Any) -> Any:
            ran = await self.invoke(
                organization_id,
                other,
                other_params,
                trigger=f"call:{run_id}",
                chain=Chain(names, run_id),
            )
            if ran.outcome.status is not RunStatus.SUCCEEDED:
                message = (ran.outcome.error or {}).get("message", ran.outcome.status.value)
                raise CallRefused(f"{other} {ran.outcome.status.value}: {message}")
            return ran.outcome.result

        try:
            outcome = await runner.run(
                deployed.source,
                event,
                organization_id=organization_id,
                function=name,
                timeout=float(deployed.timeout),
                memory_mb=deployed.memory_mb,
                call=call,
                env=env,
            )
        except BaseException as e:  # the runtime could not run it, or the caller went away
            why = "it was cancelled" if isinstance(e, asyncio.CancelledError) else str(e)
            failed = {"message": f"the call did not run to its end: {why}", "stack": None}
            self.records.end(run_id, Outcome(RunStatus.FAILED, error=failed))
            raise
        self.records.end(run_id, outcome)
        if outcome.logs:  # a run that printed nothing has no log to store or follow
            secrets = config.secret_values(deployed.environment, self.box)
            task = asyncio.create_task(self._write_logs(run_id, outcome, secrets))
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)
        return Ran(run_id, deployed.version, outcome)

    async def find(self, organization_id: int, name: str) -> Deployed:
        """NAME's running version: from this worker's map of the bucket, else the store."""
        deployed = self.registry.get(organization_id, name)
        if deployed is None:
            deployed = await asyncio.to_thread(self._load, organization_id, name)
        return deployed

    def _load(self, organization_id: int, name: str) -> Deployed:
        """From the store, when the bucket has not told this worker about NAME (yet)."""
        with self.store.transaction() as session:
            fn = session.scalar(
                select(Function).where(
                    Function.organization_id == organization_id, Function.name == name
                )
            )
            if fn is None:
                raise NotFound(f"no function named {name!r}", details={"name": name})
            return Deployed.of(fn, service.version_of(session, fn, fn.version))

    async def _write_logs(self, run_id: int, outcome: Outcome, secrets: list[str]) -> None:
        """Store the run's output, after the caller has its answer."""
        try:
            writer = LogWriter(self.store, self.js, "run", run_id, secrets=secrets)
            for line in outcome.logs:
                await writer.write(line)
            await writer.close(outcome.status.value)
        except Exception as e:  # the caller has its answer; the log is best effort here
            log.warning("run %d: cannot store its output: %s", run_id, e)

    async def settle(self) -> None:
        """Wait until the runs made so far, and their output, are recorded: what reads runs
        calls this first, and so does a worker that stops."""
        writing = list(self._writing)
        if writing:
            await asyncio.wait(writing)
        await self.records.settle()


def _check_chain(chain: Chain, name: str) -> None:
    if name in chain.names:
        cycle = " → ".join((*chain.names[chain.names.index(name) :], name))
        raise CallRefused(f"a call cycle is refused: {cycle}", details={"cycle": cycle})
    if len(chain.names) >= MAX_DEPTH:
        raise CallRefused(
            f"calls may nest {MAX_DEPTH} deep at most: {' → '.join(chain.names)} → {name}",
            details={"limit": MAX_DEPTH},
        )
