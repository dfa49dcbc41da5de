"""Benchmark: how many real DeployWorkflows a second this machine dispatches, builds stubbed.

The real DeployWorkflow runs on the control queue of an embedded Temporal dev server (SQLite,
on this machine, started the way `shipway up` starts it). Every activity it calls is a stub
that answers at once, under its real name and on its real queue: the local release and finish
steps, the build on the default pool's queue, starting and routing the release on the node's
queue, applying its functions. The figures are so the cost of the orchestration alone: the
Temporal server and the Python workers, all in this process with the client.

For each in-flight limit C, after a warm-up, N workflows (each its own id) are started with at
most C started and not yet finished. Figures for each C:
- started/s and completed/s: N over the wall time from the batch's start to the last start
  acknowledged, and to the last result held (sustained rates, as C bounds the backlog);
- latency: from asking to start one workflow to holding its outcome;
- CPU: seconds used by the Temporal server and by this process, per second of the batch.
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from itertools import count
from pathlib import Path

from run import machine, percentiles, table
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from shipway.builder.messages import BUILD_ACTIVITY, BuildInput, BuildOutput, builder_queue
from shipway.deploys.workflow import DeployInput, DeployWorkflow, Outcome
from shipway.embedded import temporal as embedded_temporal
from shipway.embedded.ports import any_free
from shipway.embedded.process import SupervisedProcess
from shipway.functions.workflow import APPLY_ACTIVITY, FUNCTIONS_QUEUE
from shipway.links import connect_temporal
from shipway.runtime.messages import NODE_QUEUE, ROUTE_ACTIVITY, START_ACTIVITY, RunInput
from shipway.workers import CONTROL_QUEUE

WARMUP = 100
#: Per in-flight limit: at about 10 builds/s, two limits take some three minutes.
WORKFLOWS = 1000
IN_FLIGHT = (50, 100)
POOL = "default"
#: Seconds to wait for one outcome before giving up on the run: something is broken.
RESULT_TIMEOUT = 120.0


@activity.defn(name="shipway.deploy.release")
async def release(outcome: Outcome) -> Outcome:
    """Stub of recording the release: the deployment goes on to deploying."""
    return dataclasses.replace(outcome, status="deploying")


@activity.defn(name="shipway.deploy.finish")
async def finish(outcome: Outcome) -> Outcome:
    """Stub of recording the outcome: what the workflow asked for is what happened."""
    return outcome


@activity.defn(name=BUILD_ACTIVITY)
async def build(spec: BuildInput) -> BuildOutput:
    return BuildOutput(manifest={}, cache_warm=True, builder="bench")


@activity.defn(name=START_ACTIVITY)
async def start(task: RunInput) -> int:
    return 1


@activity.defn(name=ROUTE_ACTIVITY)
async def route(task: RunInput) -> bool:
    return True


@activity.defn(name=APPLY_ACTIVITY)
async def apply_functions(deployment_id: int) -> list[str]:
    return []


def workers(client: Client) -> list[Worker]:
    """One worker per queue, as `shipway up` runs them; the build stub takes any number of
    builds at once, as a large enough fleet of builders would."""
    return [
        Worker(
            client,
            task_queue=CONTROL_QUEUE,
            workflows=[DeployWorkflow],
            activities=[release, finish],
        ),
        Worker(client, task_queue=builder_queue(POOL), activities=[build]),
        Worker(client, task_queue=NODE_QUEUE, activities=[start, route]),
        Worker(client, task_queue=FUNCTIONS_QUEUE, activities=[apply_functions]),
    ]


def cpu_seconds(pid: int | None) -> float:
    """User and system CPU time of process PID so far (0 if it is gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Batch:
    workflows: int
    in_flight: int
    to_last_start: float
    to_last_result: float
    latencies: list[float]
    temporal_cpu: float
    bench_cpu: float


class Dispatcher:
    """Starts DeployWorkflows with a bounded number in flight and times them."""

    def __init__(self, client: Client, temporal_pid: int | None) -> None:
        self.client = client
        self.temporal_pid = temporal_pid
        self.run = uuid.uuid4().hex[:8]
        self.ids = count(1)

    async def batch(self, n: int, in_flight: int) -> Batch:
        gate = asyncio.Semaphore(in_flight)
        acked: list[float] = []
        latencies: list[float] = []

        async def one(deployment_id: int) -> None:
            async with gate:
                asked = time.perf_counter()
                handle = await self.client.start_workflow(
                    DeployWorkflow.run,
                    deploy_input(deployment_id),
                    id=f"bench-dispatch-{self.run}-{deployment_id}",
                    task_queue=CONTROL_QUEUE,
                )
                acked.append(time.perf_counter())
                outcome = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT)
                latencies.append(time.perf_counter() - asked)
            if outcome.status != "live":
                raise SystemExit(f"deployment {deployment_id} ended {outcome.status}: {outcome}")

        temporal_cpu, bench_cpu = cpu_seconds(self.temporal_pid), time.process_time()
        began = time.perf_counter()
        await asyncio.gather(*(one(next(self.ids)) for _ in range(n)))
        ended = time.perf_counter()
        return Batch(
            workflows=n,
            in_flight=in_flight,
            to_last_start=max(acked) - began,
            to_last_result=ended - began,
            latencies=latencies,
            temporal_cpu=cpu_seconds(self.temporal_pid) - temporal_cpu,
            bench_cpu=time.process_time() - bench_cpu,
        )


def deploy_input(deployment_id: int) -> DeployInput:
    """A push of a small app: a build, then a release to start and route to."""
    return DeployInput(
        deployment_id=deployment_id,
        build=BuildInput(
            build_id=deployment_id,
            deployment_id=deployment_id,
            app_id=1,
            app="bench",
            source_path="/nonexistent/bench.tar",
            wall_seconds=60,
        ),
        pool=POOL,
    )


def rows(batch: Batch) -> list[tuple[str, str]]:
    n, c, wall = batch.workflows, batch.in_flight, batch.to_last_result
    return [
        (
            f"{c} in flight, {n:,} workflows: started / completed",
            f"{n / batch.to_last_start:.1f} / {n / wall:.1f} builds/s (batch {wall:.1f} s)",
        ),
        (f"{c} in flight: start → outcome", percentiles(batch.latencies)),
        (
            f"{c} in flight: CPU, Temporal server / benchmark process",
            f"{batch.temporal_cpu / wall:.2f} / {batch.bench_cpu / wall:.2f} cores",
        ),
    ]


async def measure(address: str, temporal_pid: int | None, args: argparse.Namespace) -> list[Batch]:
    client = await connect_temporal(address, "default")
    async with AsyncExitStack() as stack:
        for worker in workers(client):
            await stack.enter_async_context(worker)
        dispatcher = Dispatcher(client, temporal_pid)
        await dispatcher.batch(args.warmup, max(args.in_flight))
        batches = []
        for in_flight in args.in_flight:
            batch = await dispatcher.batch(args.workflows, in_flight)
            print(f"{in_flight} in flight: {args.workflows / batch.to_last_result:.1f} builds/s")
            batches.append(batch)
        return batches


async def main(args: argparse.Namespace) -> None:
    """Start Temporal in a temp dir, measure, and stop it whatever happens (SIGTERM included)."""
    load = os.getloadavg()[0]
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with tempfile.TemporaryDirectory(prefix="shipway-bench-") as tmp:
        server = SupervisedProcess(
            embedded_temporal.spec(Path(tmp), any_free(), any_free(), any_free())
        )
        try:
            await server.start()
            address = f"{embedded_temporal.HOST}:{server.spec.ready_port}"
            batches = await measure(address, server.pid, args)
        finally:
            await server.stop()
    figures = [row for batch in batches for row in rows(batch)]
    table(
        "DeployWorkflow dispatch: build steps are stubs, the Temporal dev server (SQLite) "
        "runs on the same machine",
        f"Machine: {machine()}; the real DeployWorkflow, every activity a stub that answers at "
        "once (release, build, start, route, finish, apply functions); its workers, one per "
        "queue, and the client in one Python process; a warm-up of "
        f"{args.warmup} workflows first. Rates are over the batch's wall time. Load average "
        f"before the run: {load:.2f}.",
        figures,
        save=not args.no_save,
    )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workflows", type=int, default=WORKFLOWS, help="per in-flight limit")
    parser.add_argument("--warmup", type=int, default=WARMUP)
    parser.add_argument("--in-flight", type=int, nargs="+", default=list(IN_FLIGHT))
    parser.add_argument("--no-save", action="store_true", help="print, do not append")
    return parser.parse_args()


if __name__ == "__main__":
    try:
        asyncio.run(main(parse()))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except asyncio.CancelledError:  # SIGTERM
        raise SystemExit(143) from None
