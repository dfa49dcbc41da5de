"""The shipway server process: embedded services, store, API and workers, started and stopped
in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any, TextIO

from shipway import __version__, asgi, events, natsauth, subscribers, tracing
from shipway.accounts.organizations import bootstrap
from shipway.addons import service as addons
from shipway.addons.servers import Servers
from shipway.apps import hosts
from shipway.audit import indexes, retention
from shipway.audit.consumer import AuditConsumer
from shipway.context import Context
from shipway.datadir import DataDir, hold, write_private
from shipway.deploys.activities import DeployActivities
from shipway.deploys.workflow import DeployWorkflow
from shipway.embedded import launch, ports, trim
from shipway.embedded import nats as embedded_nats
from shipway.embedded import temporal as embedded_temporal
from shipway.embedded.process import ProcessSpec, stop_leftovers
from shipway.errors import ConfigError, ServiceError, ShipwayError, ValidationError
from shipway.fleet import dispatch, pools
from shipway.fleet.autoscaler import Autoscaler
from shipway.fleet.local import LocalBuilders
from shipway.fleet.member import Builder
from shipway.functions.activities import FunctionActivities
from shipway.functions.worker import FunctionWorker
from shipway.functions.workflow import FUNCTIONS_QUEUE, FunctionRunWorkflow
from shipway.links import NatsLink, connect_temporal, temporal_security
from shipway.logs import ensure_streams
from shipway.nodes import local as nodes
from shipway.nodes.client import NodeClient, api_socket_name
from shipway.oci import prune
from shipway.sandbox import network
from shipway.settings import Settings
from shipway.store import Store, upgrade
from shipway.store.types import utcnow
from shipway.webhooks.activities import HookActivities
from shipway.webhooks.workflow import HookWorkflow
from shipway.workers import CONTROL_QUEUE, ProbeWorkflow, Workers, probe_activity

log = logging.getLogger(__name__)

#: Builds this machine's builder runs at once.
BUILD_SLOTS = 2
#: Seconds the builder inside `shipway up` lets running builds go on once the server stops;
#: then they are cancelled, and Temporal gives them to a builder when there is one again.
STOP_BUILDS_AFTER = 5.0


def lock_data_dir(data: DataDir) -> TextIO:
    """Hold an exclusive lock on DATA for the life of the process; one server per data dir."""
    handle = hold(data.lock_file)
    if handle is None:
        pid = data.read_pid()
        running = f" (pid {pid})" if pid else ""
        raise ServiceError(
            f"shipway is already running with data dir {data.root}{running}; "
            "run `shipway down` first or choose another --data"
        ) from None
    return handle


def prepare_store(settings: Settings, data: DataDir) -> Store:
    """Migrate the store and make sure DATA/admin-token holds a working owner token."""
    store = Store(settings.store_url)
    upgrade(store.engine)
    indexes.ensure(store.engine, settings.audit_indexed_paths)
    with store.transaction() as session:
        secret = bootstrap(session, data.read_admin_token())
    if secret is not None:
        write_private(data.admin_token, secret + "\n")
    return store


class Server:
    """Runs everything until SIGINT or SIGTERM, then stops it all, children first to last."""

    def __init__(self, settings: Settings, on_ready: Callable[[dict[str, Any]], None]) -> None:
        self.settings = settings
        self.data = DataDir(settings.data_dir)
        self.on_ready = on_ready
        self._stop = asyncio.Event()
        self.addons: Servers | None = None
        self._addons_watch: asyncio.Task[None] | None = None
        self._sweeps: set[asyncio.Task[None]] = set()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        tracing.setup("control-plane")
        self.data.create()
        subscribers.record_events()
        network.allow_shared(self.settings.unsafe_shared_network)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        lock = lock_data_dir(self.data)
        try:
            async with AsyncExitStack() as stack:
                starting = asyncio.create_task(self._start(stack), name="start")
                stopping = asyncio.create_task(self._stop.wait(), name="wait-for-stop")
                await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if starting.done():
                    starting.result()
                    await stopping
                else:
                    starting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await starting
                log.info("stopping")
        finally:
            self.data.clear_run_files()
            lock.close()

    async def _start(self, stack: AsyncExitStack) -> None:
        settings = self.settings
        # The public port belongs to the node; bind it now for a new one, so a clash is one
        # line before anything starts. A node still running on that port keeps its own.
        listener = None
        running = self.data.read_node()
        if running is None or running.get("port") != settings.port:
            listener = ports.bind_listener(settings.host, settings.port)
            stack.callback(listener.close)
        store = await asyncio.to_thread(prepare_store, settings, self.data)
        stack.callback(store.close)
        try:
            rules = dispatch.load(settings.fleet_rules)
        except ValidationError as e:
            raise ConfigError(f"SHIPWAY_FLEET_RULES: {e.message}") from e
        services = Context(settings=settings, store=store, rules=rules)
        await self._start_embedded(stack, services)
        await self._start_addons(stack, services)

        services.temporal = await connect_temporal(
            services.addresses["temporal"],
            settings.temporal_namespace,
            **temporal_security(settings),
        )
        link = NatsLink(
            services.addresses["nats"], natsauth.own(self.settings, natsauth.Role.CONTROL)
        )
        await link.connect()
        stack.push_async_callback(link.close)
        services.nats = link
        stack.callback(events.unlisten, subscribers.publish_events(link))

        await ensure_streams(link.js)
        # The node starts (a process of its own, about a second) while this one goes on.
        node_starting = asyncio.create_task(
            nodes.ensure(settings, self.data, services.addresses, listener), name="node-start"
        )
        stack.push_async_callback(self._leave_node, node_starting)
        audit_consumer = AuditConsumer(store, link.js)
        await audit_consumer.start()
        stack.push_async_callback(audit_consumer.close)
        if settings.audit_retention_days is not None:
            pruning = asyncio.create_task(
                retention.keep_pruning(store, settings.audit_retention_days), name="audit-retention"
            )
            stack.callback(pruning.cancel)
        images = asyncio.create_task(
            prune.keep_pruning(store, self.data.root, settings.image_retention), name="image-prune"
        )
        stack.callback(images.cancel)
        runtime = NodeClient(str(self.data.root))
        stack.push_async_callback(runtime.close)
        services.runtime = runtime
        functions = FunctionWorker(store, self.data.root, link.js)
        await functions.start()
        stack.push_async_callback(functions.close)
        services.invoker = functions.invoker
        self._start_workers(stack, services, runtime)

        await self._serve_api(stack, services)
        node = await node_starting
        watching = asyncio.create_task(
            nodes.watch(settings, self.data, services.addresses), name="node-watch"
        )
        stack.callback(watching.cancel)
        state = self._state(services)
        state["node"] = node
        self.data.write_state(state)
        write_private(self.data.pid_file, f"{os.getpid()}\n")
        await self._start_fleet(stack, services)
        self.on_ready(state)
        running = {name: proc.pid for name, proc in services.processes.items() if proc.pid}
        await asyncio.to_thread(trim.give_back, running)

    def _start_workers(self, stack: AsyncExitStack, services: Context, runtime: NodeClient) -> None:
        """The control-plane worker and this machine's builder, in this process."""
        assert services.temporal is not None and services.nats is not None
        deploys = DeployActivities(services.store, services.addons)
        hooks = HookActivities(
            services.store,
            self.settings,
            runtime=runtime,
            rules=services.rules,
            link=services.nats,
        )
        control = Workers(
            services.temporal,
            CONTROL_QUEUE,
            workflows=[ProbeWorkflow, DeployWorkflow, HookWorkflow],
            activities=[
                probe_activity,
                deploys.release,
                deploys.finish,
                hooks.launch,
                hooks.outcome,
                hooks.report,
                hooks.remove,
                hooks.settle,
            ],
        )
        builders = [
            Builder(
                services.temporal,
                services.store,
                self.data.root,
                services.nats.js,
                slots=BUILD_SLOTS,
                graceful=STOP_BUILDS_AFTER,
                on_built=deploys.record_built,
            )
        ][: self.settings.builders]
        assert services.invoker is not None
        function_activities = FunctionActivities(services.invoker, services.store, self.data.root)
        function_workers = Workers(
            services.temporal,
            FUNCTIONS_QUEUE,
            workflows=[FunctionRunWorkflow],
            activities=[function_activities.run, function_activities.apply_release],
        )
        parts: list[Workers | Builder] = [control, *builders, function_workers]
        for part in parts:
            part.start()
            stack.push_async_callback(part.stop)
        services.workers = control
        services.builders = builders

    async def _start_fleet(self, stack: AsyncExitStack, services: Context) -> None:
        """The builders beside this process (`--builders N` beyond the first), and the
        autoscaler of the pools with a policy; both once the data dir says where all is."""
        assert services.nats is not None
        env = dict(os.environ)
        if self.settings.unsafe_shared_network:
            env["SHIPWAY_UNSAFE_SHARED_NETWORK"] = "true"
        local = LocalBuilders(self.data.root, services.nats.js, env)
        local.keep(pools.DEFAULT_POOL, max(self.settings.builders - 1, 0), BUILD_SLOTS)
        local.start()
        stack.push_async_callback(local.close)
        if services.rules.pools:
            autoscaler = Autoscaler(
                services.store, services.nats, dict(services.rules.pools), local
            )
            await autoscaler.start()
            stack.push_async_callback(autoscaler.close)
            services.autoscaler = autoscaler

    async def _start_embedded(self, stack: AsyncExitStack, services: Context) -> None:
        settings = self.settings
        wanted = []
        if settings.temporal_address:
            services.addresses["temporal"] = settings.temporal_address
        else:
            wanted += ["temporal", "temporal_ui", "temporal_http"]
        if settings.nats_url:
            services.addresses["nats"] = settings.nats_url
        else:
            wanted.append("nats")
        if not wanted:
            return
        # A run killed with SIGKILL may leave its servers on last time's ports: gone first.
        await asyncio.to_thread(self._stop_leftovers)
        chosen, processes = await launch.start_on_free_ports(
            lambda: ports.allocate(self.data.ports_file, wanted, avoid={settings.port}),
            self._embedded_specs,
        )
        for proc in processes:
            services.processes[proc.spec.name] = proc
            stack.push_async_callback(proc.stop)
        if "temporal" in chosen:
            services.addresses["temporal"] = f"127.0.0.1:{chosen['temporal']}"
            services.addresses["temporal_ui"] = f"http://127.0.0.1:{chosen['temporal_ui']}"
        if "nats" in chosen:
            services.addresses["nats"] = f"nats://127.0.0.1:{chosen['nats']}"

    def _embedded_specs(self, chosen: dict[str, int]) -> list[ProcessSpec]:
        specs = []
        if "temporal" in chosen:
            specs.append(
                embedded_temporal.spec(
                    self.data.root,
                    chosen["temporal"],
                    chosen["temporal_ui"],
                    chosen["temporal_http"],
                )
            )
        if "nats" in chosen:
            specs.append(embedded_nats.spec(self.data.root, chosen["nats"]))
        return specs

    async def _start_addons(self, stack: AsyncExitStack, services: Context) -> None:
        """The add-on servers the store names (found running, or started), watched from now
        on; one that cannot start is reported by `status` and by the deploys that need it."""
        servers = Servers(self.data.root, self.settings.addons_postgres_url)
        services.addons = self.addons = servers
        try:
            await addons.keep(services.store, servers)
        except ShipwayError as e:
            log.error("add-on servers: %s", e.message)
        watching = self._addons_watch = asyncio.create_task(servers.watch(), name="addons-watch")
        stack.callback(watching.cancel)

        def sweep(event: events.Event) -> None:
            if event.action in ("app.delete", "environment.delete"):
                loop.call_soon_threadsafe(lambda: self._spawn_sweep(services))

        loop = asyncio.get_running_loop()
        events.listen(sweep)
        stack.callback(events.unlisten, sweep)

    def _spawn_sweep(self, services: Context) -> None:
        assert self.addons is not None
        task = asyncio.ensure_future(addons.keep(services.store, self.addons))
        self._sweeps.add(task)
        task.add_done_callback(self._sweeps.discard)

    def _stop_leftovers(self) -> None:
        """A run killed with SIGKILL leaves its servers exiting; wait them out before starting."""
        markers = [str(self.data.root / "temporal.db"), str(self.data.root / "nats")]
        stopped = stop_leftovers(markers)
        if stopped:
            log.warning("stopped servers left by an earlier run: pids %s", stopped)

    async def _leave_node(self, starting: asyncio.Task[dict[str, Any]]) -> None:
        """Stop the node with the rest, unless this is a stop for an upgrade (`shipway down
        --keep-apps`) or the node is another version's: then it goes on serving the apps.
        A start cut short still ends first, so that no node is left behind."""
        with contextlib.suppress(Exception):
            await asyncio.shield(starting)
        if self.data.keep_node.exists():
            self.data.keep_node.unlink(missing_ok=True)
            log.info("leaving the node and the add-on servers running: apps keep serving")
            return
        await asyncio.to_thread(nodes.stop, self.data)
        if self.addons is not None:
            if self._addons_watch is not None:  # a server stopped on purpose is not restarted
                self._addons_watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._addons_watch
            await asyncio.to_thread(self.addons.stop)

    async def _serve_api(self, stack: AsyncExitStack, services: Context) -> None:
        """uvicorn on a private socket behind the node's router, which finds it by the data
        dir; streams that follow (logs, audit tail) end themselves when it stops."""
        from shipway.api.app import create_app

        await asgi.serve(
            stack,
            create_app(services),
            api_socket_name(str(self.data.root)),
            name="api",
            before_stop=services.stopping.set,
            http="httptools",
            timeout_graceful_shutdown=5,
        )

    def _state(self, services: Context) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "version": __version__,
            "url": self.settings.api_url,
            "apps_url": hosts.url(f"APP.{self.settings.base_domain}", self.settings.port),
            "port": self.settings.port,
            "data_dir": str(self.data.root),
            "admin_token_file": str(self.data.admin_token),
            "store": services.store.dialect,
            "addresses": services.addresses,
            "embedded": sorted(services.processes),
            "sandbox_network": network.state().as_dict(),
            "started_at": utcnow().isoformat(),
        }
