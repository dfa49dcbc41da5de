"""One function call, however it came: find the running version, record the run, run it in
its runtime, and let it call other functions (a pipeline), within a depth and without cycles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select

from shipway import metrics, tracing
from shipway.apps import config
from shipway.apps.secretbox import SecretBox
from shipway.errors import NotFound, ShipwayError
from shipway.functions import service
from shipway.functions.outcome import Call, Outcome, RunStatus
from shipway.functions.records import RunRecords
from shipway.functions.registry import Deployed, Registry
from shipway.logs import LogWriter
from shipway.logs.mask import Masker
from shipway.store import Store
from shipway.store.tables import Function

if TYPE_CHECKING:
    from opentelemetry.context import Context

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
    """The functions a call is nested in, outermost first, the run that calls, and the
    secrets of the functions in the chain (the callee may be handed and print them); with
    traces on, the calling run's span, whatever task the runtime makes the call in."""

    names: tuple[str, ...]
    run_id: int
    secrets: tuple[str, ...] = ()
    span: Context | None = None


@dataclass(frozen=True)
class Ran:
    """A run as its caller, its record and its log see it: secrets masked."""

    run_id: int
    version: int
    outcome: Outcome


@dataclass(frozen=True)
class _Done:
    """A run, also as its handler ended it (RAW): a calling handler gets what the callee
    returned. SECRETS are those it could see: its chain's, its own and its callees'."""

    ran: Ran
    raw: Outcome
    secrets: frozenset[str]


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
        deployed: Deployed | None = None,
    ) -> Ran:
        """Run NAME's current version (DEPLOYED, when the caller has found it already) with
        PARAMS; NotFound if there is no such function. The outcome is the one recorded:
        every secret the run could see is masked in it."""
        done = await self._invoke(organization_id, name, params, trigger, None, deployed)
        return done.ran

    async def _invoke(
        self,
        organization_id: int,
        name: str,
        params: Any,
        trigger: str,
        chain: Chain | None,
        deployed: Deployed | None,
    ) -> _Done:
        """`_run`, in a span of its own when traces are on: a child of the calling run's in a
        pipeline."""
        if not tracing.active:
            return await self._run(organization_id, name, params, trigger, chain, deployed)
        attributes = {"shipway.function.name": name, "shipway.function.trigger": trigger}
        parent = chain.span if chain else None
        with tracing.span("function.call", attributes, parent=parent) as span:
            done = await self._run(organization_id, name, params, trigger, chain, deployed)
            assert span is not None
            status = done.ran.outcome.status
            span.set_attribute("shipway.function.version", done.ran.version)
            span.set_attribute("shipway.run.id", done.ran.run_id)
            span.set_attribute("shipway.run.status", status.value)
            if status is not RunStatus.SUCCEEDED:
                tracing.fail(span, f"the run {status.value}")
            return done

    async def _run(
        self,
        organization_id: int,
        name: str,
        params: Any,
        trigger: str,
        chain: Chain | None,
        deployed: Deployed | None,
    ) -> _Done:
        if chain is not None:
            _check_chain(chain, name)
        if deployed is None:
            deployed = await self.find(organization_id, name)
        runner = self.runners.get(deployed.runtime)
        if runner is None:
            raise ShipwayError(f"the {deployed.runtime} runtime is not available here")
        own = config.secret_values(deployed.environment, self.box)
        secrets = frozenset((*(chain.secrets if chain else ()), *own))
        run_id = await self.records.start(
            deployed.function_id,
            deployed.version,
            trigger,
            Masker(secrets).mask_json(params),
            chain.run_id if chain else None,
        )
        env = config.environment(deployed.environment, self.box)
        event = {"params": params, "env": env, "trigger": trigger, "run_id": run_id}
        inner = Chain(
            (*(chain.names if chain else ()), name), run_id, tuple(secrets), tracing.current()
        )
        seen = set(secrets)

        async def call(other: str, other_params: Any) -> Any:
            done = await self._invoke(
                organization_id, other, other_params, f"call:{run_id}", inner, None
            )
            seen.update(done.secrets)
            raw = done.raw
            if raw.status is not RunStatus.SUCCEEDED:
                message = (raw.error or {}).get("message", raw.status.value)
                raise CallRefused(f"{other} {raw.status.value}: {message}")
            return raw.result

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
            self.records.end(run_id, masked(Outcome(RunStatus.FAILED, error=failed), seen))
            metrics.function_ran(name, RunStatus.FAILED, None)
            raise
        shown = masked(outcome, seen)
        self.records.end(run_id, shown)
        metrics.function_ran(name, shown.status, shown.duration)
        if shown.logs:  # a run that printed nothing has no log to store or follow
            task = asyncio.create_task(self._write_logs(run_id, shown))
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)
        return _Done(Ran(run_id, deployed.version, shown), outcome, frozenset(seen))

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

    async def _write_logs(self, run_id: int, outcome: Outcome) -> None:
        """Store the run's output (masked already), after the caller has its answer."""
        try:
            writer = LogWriter(self.store, self.js, "run", run_id)
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


def masked(outcome: Outcome, secrets: Iterable[str]) -> Outcome:
    """OUTCOME with SECRETS masked in its result, its error (message and stack) and every
    line it printed, before any of it is recorded, logged or answered."""
    masker = Masker(secrets)
    if not masker:
        return outcome
    return replace(
        outcome,
        result=masker.mask_json(outcome.result),
        error=masker.mask_json(outcome.error),
        logs=[masker.mask(line) for line in outcome.logs],
    )


def _check_chain(chain: Chain, name: str) -> None:
    if name in chain.names:
        cycle = " → ".join((*chain.names[chain.names.index(name) :], name))
        raise CallRefused(f"a call cycle is refused: {cycle}", details={"cycle": cycle})
    if len(chain.names) >= MAX_DEPTH:
        raise CallRefused(
            f"calls may nest {MAX_DEPTH} deep at most: {' → '.join(chain.names)} → {name}",
            details={"limit": MAX_DEPTH},
        )
