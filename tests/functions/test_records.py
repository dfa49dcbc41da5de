"""Run records written behind the calls, on SQLite and PostgreSQL: ids from reserved blocks,
a run's writes in order, one bad record losing no other, and settle."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shipway.apps.secretbox import SecretBox
from shipway.errors import IllegalTransition
from shipway.functions.invoke import Invoker
from shipway.functions.outcome import Outcome, RunStatus
from shipway.functions.records import RunRecords
from shipway.functions.registry import Deployed, Registry
from shipway.functions.runtimes.python.runtime import WorkerUnavailable
from shipway.store import Store
from shipway.store.tables import Function, FunctionRun, Organization


def function(store: Store, name: str = "report") -> int:
    with store.transaction() as session:
        org = session.scalar(select(Organization).where(Organization.name == "acme"))
        if org is None:
            org = Organization(name="acme")
            session.add(org)
            session.flush()
        fn = Function(
            organization_id=org.id,
            name=name,
            runtime="js",
            version=1,
            public=False,
            timeout=30,
            memory_mb=128,
            environment={},
        )
        session.add(fn)
        session.flush()
        return fn.id


def stored(store: Store) -> dict[int, FunctionRun]:
    with store.transaction() as session:
        runs = session.scalars(select(FunctionRun)).all()
        session.expunge_all()
        return {run.id: run for run in runs}


async def test_a_run_is_recorded_as_it_starts_and_as_it_ends(store: Store) -> None:
    fn = function(store)
    records = RunRecords(store)
    run_id = await records.start(fn, 1, "http", {"x": 1}, None)
    await records.settle()
    started = stored(store)[run_id]
    assert (started.status, started.params, started.finished_at) == ("running", {"x": 1}, None)

    records.end(run_id, Outcome(RunStatus.SUCCEEDED, result={"y": 2}, duration=0.25))
    await records.settle()
    ended = stored(store)[run_id]
    assert (ended.status, ended.result, ended.duration) == ("succeeded", {"y": 2}, 0.25)
    assert ended.finished_at is not None and ended.created_at <= ended.finished_at


async def test_a_run_that_ends_before_its_start_is_written_is_written_once(store: Store) -> None:
    fn = function(store)
    records = RunRecords(store)
    run_id = await records.start(fn, 1, "http", {}, None)
    records.end(run_id, Outcome(RunStatus.FAILED, error={"message": "boom"}, duration=0.1))
    await records.settle()
    run = stored(store)[run_id]
    assert (run.status, run.error) == ("failed", {"message": "boom"})


async def test_a_run_ends_only_in_one_of_its_ends(store: Store) -> None:
    fn = function(store)
    records = RunRecords(store)
    run_id = await records.start(fn, 1, "http", {}, None)
    with pytest.raises(IllegalTransition, match="from running to running"):
        records.end(run_id, Outcome(RunStatus.RUNNING))
    await records.settle()
    assert stored(store)[run_id].status == "running"


async def test_concurrent_runs_get_distinct_ids_across_processes(store: Store) -> None:
    fn = function(store)
    first, second = RunRecords(store, block=4), RunRecords(store, block=4)

    async def one(records: RunRecords, i: int) -> int:
        run_id = await records.start(fn, 1, "http", {"i": i}, None)
        await asyncio.sleep(0)
        records.end(run_id, Outcome(RunStatus.SUCCEEDED, result=i, duration=0.0))
        return run_id

    made = await asyncio.gather(
        *(one(first, i) for i in range(25)), *(one(second, i) for i in range(25, 50))
    )
    await asyncio.gather(first.settle(), second.settle())
    assert len(set(made)) == 50
    runs = stored(store)
    assert sorted(runs) == sorted(made)
    assert {run.params["i"]: run.result for run in runs.values()} == {i: i for i in range(50)}
    assert {run.status for run in runs.values()} == {"succeeded"}


async def test_a_record_that_cannot_be_written_loses_no_other(store: Store) -> None:
    kept, dropped = function(store, "kept"), function(store, "dropped")
    records = RunRecords(store)
    with store.transaction() as session:
        gone = session.get(Function, dropped)
        assert gone is not None
        session.delete(gone)
    orphan = await records.start(dropped, 1, "http", {}, None)
    run_id = await records.start(kept, 1, "http", {}, None)
    await records.settle()
    assert list(stored(store)) == [run_id] and orphan != run_id


async def test_settle_waits_for_what_was_queued_before_it(store: Store) -> None:
    fn = function(store)
    records = RunRecords(store)
    ids = [await records.start(fn, 1, "http", {}, None) for _ in range(3)]
    await records.settle()
    assert set(ids) <= set(stored(store))
    await records.settle()  # nothing queued: returns at once


class Unavailable:
    """A runtime that cannot run anything (as a Python worker that will not start)."""

    async def run(self, *args: Any, **kwargs: Any) -> Outcome:
        raise WorkerUnavailable("the Python worker did not start")


async def test_a_call_its_runtime_cannot_run_is_recorded_as_failed(
    store: Store, tmp_path: Path
) -> None:
    fn = function(store)
    invoker = Invoker(store, Registry(), {"python": Unavailable()}, SecretBox.load(tmp_path))
    deployed = Deployed(1, fn, "report", 1, "python", "def handler(e): pass", 30, 128, False)
    with pytest.raises(WorkerUnavailable):
        await invoker.invoke(1, "report", {}, deployed=deployed)
    await invoker.settle()
    [run] = stored(store).values()
    assert run.status == "failed" and run.error == {
        "message": "the call did not run to its end: the Python worker did not start",
        "stack": None,
    }
