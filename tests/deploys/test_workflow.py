"""DeployWorkflow end to end on real Temporal, NATS, SQLite and bubblewrap, without git."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from shipway.accounts.roles import Principal, Role
from shipway.apps import service as apps
from shipway.builder.activity import BuilderActivities
from shipway.builder.messages import builder_queue
from shipway.deploys import activities as deploy_activities
from shipway.deploys import launch
from shipway.deploys.activities import DeployActivities
from shipway.deploys.workflow import DeployInput, DeployWorkflow, _may_have_release_phase
from shipway.fleet.dispatch import Rule, Rules
from shipway.links import connect_temporal
from shipway.logs import ensure_streams
from shipway.router import RouteTable
from shipway.runtime.activities import RuntimeActivities
from shipway.runtime.agent import Runtime
from shipway.runtime.messages import NODE_QUEUE
from shipway.store import Store
from shipway.store.tables import AuditEntry, Build, Deployment, LogLine, Organization, Release
from shipway.workers import Workers
from tests.helpers import migrated_store, sandboxed
from tests.runtime.conftest import app_log
from tests.servers import Servers

pytestmark = pytest.mark.integration


class Platform:
    def __init__(self, store: Store, client, data: Path, owner: Principal, queue: str) -> None:  # type: ignore[no-untyped-def]
        self.store, self.client, self.data, self.owner, self.queue = (
            store,
            client,
            data,
            owner,
            queue,
        )

    async def deploy(self, files: dict[str, str], app: str = "web", ref: str = "main") -> int:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        async def chunks() -> AsyncIterator[bytes]:
            yield buffer.getvalue()

        upload = await launch.receive(chunks(), self.data, 10 * 1024 * 1024)
        launched = await launch.launch(
            self.store,
            self.client,
            self.owner,
            app,
            upload,
            ref=f"refs/heads/{ref}",
            sha=None,
            source="upload",
            environment=None,
            build_timeout=120,
            rules=Rules((Rule(pool=self.queue),)),  # every build to this test's pool
        )
        return launched.deployment_id

    def status(self, deployment_id: int) -> str:
        with self.store.transaction() as session:
            row = session.get(Deployment, deployment_id)
            assert row is not None
            return row.status

    async def wait(self, deployment_id: int, statuses: set[str], timeout: float = 120) -> str:
        for _ in range(int(timeout / 0.05)):
            status = await asyncio.to_thread(self.status, deployment_id)
            if status in statuses:
                return status
            await asyncio.sleep(0.05)
        pytest.fail(f"deployment {deployment_id} stayed {status}")

    def log(self, deployment_id: int) -> list[str]:
        with self.store.transaction() as session:
            row = session.get(Deployment, deployment_id)
            assert row is not None
            return list(
                session.scalars(
                    select(LogLine.line)
                    .where(LogLine.owner_id == row.build_id)
                    .order_by(LogLine.seq)
                )
            )

    def app_log(self, app: str = "web") -> list[str]:
        return app_log(self.store, app)

    def reason(self, deployment_id: int) -> str | None:
        with self.store.transaction() as session:
            row = session.get(Deployment, deployment_id)
            assert row is not None
            return row.reason

    async def set_config(self, values: dict[str, str], app: str = "web") -> int:
        """Change the app's config as `shipway env set` does; the deployment it starts."""
        from shipway.apps import config
        from shipway.apps.secretbox import SecretBox
        from shipway.deploys import service

        with self.store.transaction() as session:
            done = config.change(
                session, self.owner, app, values=values, box=SecretBox.load(self.data)
            )
            snapshot = config.snapshot(session, done.app.id)
            deployment = service.release_config(
                session, self.owner.actor, done.app, snapshot, config.describe(done)
            )
        assert deployment is not None
        await launch.deploy_release(self.store, self.client, deployment)
        return deployment.id

    async def rollback(self, to: int, app: str = "web") -> int:
        """Roll back as `shipway rollback` does; the deployment it starts."""
        from shipway.deploys import service

        with self.store.transaction() as session:
            deployment = service.rollback(session, self.owner, app, to)
        await launch.deploy_release(self.store, self.client, deployment)
        return deployment.id


#: The builder inside `shipway up`: it records each release as its build succeeds.
BESIDE = "builder beside the control plane"


@pytest_asyncio.fixture
async def platform(
    servers: Servers, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Platform]:
    """The control plane's workers, a node's and a builder's (with the parameter BESIDE,
    one that records what it builds at once)."""
    store = migrated_store(f"sqlite:///{tmp_path / 'shipway.db'}")
    with store.transaction() as session:
        org = Organization(name="acme", is_admin=True)
        session.add(org)
        session.flush()
        owner = Principal(org.id, Role.OWNER, "user:o")
        apps.create(session, owner, "web")
    client = await connect_temporal(servers.temporal_address, "default")
    link = servers.link()
    await link.connect()
    await ensure_streams(link.js)
    import uuid

    pool = f"test-{uuid.uuid4().hex[:8]}"
    deploys = DeployActivities(store)
    on_built = deploys.record_built if getattr(request, "param", None) == BESIDE else None
    control = Workers(
        client,
        "shipway-control",
        workflows=[DeployWorkflow],
        activities=[deploys.release, deploys.finish],
    )
    runtime = Runtime(store, tmp_path, RouteTable(), base_domain="localhost", js=link.js)
    node = RuntimeActivities(runtime)
    node_workers = Workers(client, NODE_QUEUE, workflows=[], activities=node.all())
    node_workers.start()
    builder = Workers(
        client,
        builder_queue(pool),
        workflows=[],
        activities=[BuilderActivities(store, tmp_path, link.js, on_built=on_built).build],
    )
    control.start()
    builder.start()
    try:
        yield Platform(store, client, tmp_path, owner, pool)
    finally:
        await builder.stop()
        await control.stop()
        await node_workers.stop()
        await runtime.close()
        await link.close()
        store.close()


async def test_a_static_site_becomes_a_live_release(platform: Platform) -> None:
    deployment = await platform.deploy({"index.html": "<h1>hi"})
    assert await platform.wait(deployment, {"live", "failed"}) == "live"
    log = platform.log(deployment)
    assert "-----> static app detected (static)" in log
    assert log[-1].startswith("-----> Build succeeded")
    with platform.store.transaction() as session:
        [release] = session.scalars(select(Release)).all()
        assert release.version == 1 and release.manifest["static_root"] == "."


@pytest.mark.parametrize("platform", [BESIDE], indirect=True)
async def test_a_builder_beside_the_control_plane_records_its_release_once(
    platform: Platform,
) -> None:
    """It records the release as the build succeeds; the workflow's step finds it there."""
    first = await platform.deploy({"index.html": "<h1>one"})
    assert await platform.wait(first, {"live", "failed"}) == "live", platform.reason(first)
    second = await platform.deploy({"index.html": "<h1>two"})
    assert await platform.wait(second, {"live", "failed"}) == "live", platform.reason(second)
    with platform.store.transaction() as session:
        releases = session.scalars(select(Release).order_by(Release.version)).all()
        assert [r.version for r in releases] == [1, 2]
        row = session.get(Deployment, second)
        assert row is not None and row.release_id == releases[1].id
        build = session.get(Build, row.build_id)
        assert build is not None and build.status == "succeeded" and build.steps
        assert [
            e.action
            for e in session.scalars(
                select(AuditEntry).where(AuditEntry.subject == f"deployment:{second}")
            )
        ].count("deployment.deploying") == 1


async def test_recording_a_release_readies_the_cgroup_joins_of_its_instances(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its instances start next: the joins' wait passes meanwhile (shipway.sandbox.joins)."""
    readied: list[bool] = []
    monkeypatch.setattr(deploy_activities, "expect_sandboxes", lambda: readied.append(True))
    deployment = await platform.deploy({"index.html": "<h1>hi"})
    assert await platform.wait(deployment, {"live", "failed"}) == "live"
    assert readied == [True]


async def test_a_source_without_a_stack_fails_with_what_was_looked_for(
    platform: Platform,
) -> None:
    deployment = await platform.deploy({"README.md": "hello"})
    assert await platform.wait(deployment, {"live", "failed"}) == "failed"
    with platform.store.transaction() as session:
        row = session.get(Deployment, deployment)
        assert row is not None and row.reason is not None
        assert "shipway looked for" in row.reason


SLOW = {
    "package.json": json.dumps(
        {"name": "s", "version": "1.0.0", "scripts": {"postinstall": "sleep 301"}}
    ),
    "package-lock.json": json.dumps(
        {
            "name": "s",
            "version": "1.0.0",
            "lockfileVersion": 3,
            "requires": True,
            "packages": {"": {"name": "s", "version": "1.0.0"}},
        }
    ),
}


def sleepers() -> list[int]:
    return sandboxed("sleep", "301")


async def test_a_newer_deploy_supersedes_a_running_build(platform: Platform) -> None:
    first = await platform.deploy(SLOW)
    for _ in range(1200):
        if sleepers():
            break
        await asyncio.sleep(0.05)
    assert sleepers(), "the slow install step never started"
    loop = asyncio.get_running_loop()
    second = await platform.deploy({"index.html": "<h1>newer"})
    assert await platform.wait(first, {"superseded"}, timeout=30) == "superseded"
    superseded_after = loop.time()
    assert await platform.wait(second, {"live", "failed"}) == "live"
    for _ in range(600):
        if not sleepers():
            break
        await asyncio.sleep(0.05)
    assert not sleepers(), "the superseded build's processes outlived it"
    print(f"sandbox gone {loop.time() - superseded_after:.2f}s after superseded")


async def test_the_build_log_masks_the_apps_secrets(platform: Platform) -> None:
    from shipway.apps import config
    from shipway.apps.secretbox import SecretBox

    with platform.store.transaction() as session:
        config.change(
            session,
            platform.owner,
            "web",
            values={"API_TOKEN": "hunter2-very-secret"},
            secret=True,
            box=SecretBox.load(platform.data),
        )
    package = {
        "name": "s",
        "version": "1.0.0",
        "scripts": {"postinstall": "echo using token hunter2-very-secret"},
    }
    lock = json.loads(SLOW["package-lock.json"])
    deployment = await platform.deploy(
        {"package.json": json.dumps(package), "package-lock.json": json.dumps(lock)}
    )
    await platform.wait(deployment, {"live", "failed"})
    log = "\n".join(platform.log(deployment))
    assert "using token ***" in log
    assert "hunter2" not in log


async def test_a_private_step_shows_a_placeholder_instead_of_its_output(
    platform: Platform,
) -> None:
    package = {"name": "s", "version": "1.0.0", "scripts": {"postinstall": "echo INTERNAL-URL"}}
    lock = json.loads(SLOW["package-lock.json"])
    files = {"package.json": json.dumps(package), "package-lock.json": json.dumps(lock)}
    deployment = await platform.deploy(
        {**files, "shipway.yml": "build:\n  private: [dependencies]\n"}
    )
    await platform.wait(deployment, {"live", "failed"})
    log = platform.log(deployment)
    assert "(output of a private step hidden)" in log
    assert not any("INTERNAL-URL" in line for line in log)

    broken = await platform.deploy({**files, "shipway.yml": "build:\n  private: [tests]\n"})
    assert await platform.wait(broken, {"live", "failed"}) == "failed"
    assert "build.private names unknown steps tests" in "\n".join(platform.log(broken))


#: A static site (it runs no instance, so the deploy is quick) with a release phase.
MIGRATING = {"index.html": "<h1>one", "Procfile": "release: echo migrating $MARKER\n"}


def phase_lines(log: list[str]) -> list[str]:
    return [line for line in log if line.startswith(("release: ", "[shipway] Running release"))]


async def logged(platform: Platform, line: str) -> None:
    for _ in range(400):
        if line in await asyncio.to_thread(platform.app_log):
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"the app log never said {line!r}: {platform.app_log()}")


async def node_steps(platform: Platform) -> list[str]:
    """The node's activities the latest deploy of web's production scheduled, in order."""
    handle = platform.client.get_workflow_handle("deploy/web/production")
    history = await handle.fetch_history()
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    return [name for name in scheduled if name.startswith("shipway.runtime.")]


async def test_the_release_phase_runs_before_the_release_goes_live_and_not_on_rollback(
    platform: Platform,
) -> None:
    first = await platform.deploy(MIGRATING)
    assert await platform.wait(first, {"live", "failed"}) == "live", platform.reason(first)
    assert await node_steps(platform) == [
        "shipway.runtime.release",
        "shipway.runtime.go_live",
    ]
    await logged(platform, "release: migrating")
    assert phase_lines(platform.app_log())[0] == (
        "[shipway] Running release phase of v1: echo migrating $MARKER"
    )

    # A config change is a new release of the same build: its release phase runs again.
    changed = await platform.set_config({"MARKER": "m2"})
    assert await platform.wait(changed, {"live", "failed"}) == "live", platform.reason(changed)
    assert (await node_steps(platform))[0] == "shipway.runtime.release"
    await logged(platform, "release: migrating m2")

    # A rollback deploys a copy of a release whose release phase has run: it does not again.
    rolled = await platform.rollback(1)
    assert await platform.wait(rolled, {"live", "failed"}) == "live", platform.reason(rolled)
    assert await node_steps(platform) == ["shipway.runtime.go_live"]


async def test_a_failing_release_phase_fails_the_deployment_and_nothing_of_it_starts(
    platform: Platform,
) -> None:
    live = await platform.deploy(MIGRATING)
    assert await platform.wait(live, {"live", "failed"}) == "live", platform.reason(live)
    failing = {"index.html": "<h1>two", "Procfile": "release: echo no database; exit 1\n"}
    broken = await platform.deploy(failing)
    assert await platform.wait(broken, {"live", "failed"}) == "failed"
    assert platform.reason(broken) == (
        "release phase failed (exited with code 1); its last output:\nno database"
    )
    assert await node_steps(platform) == ["shipway.runtime.release"], "nothing of it started"
    with platform.store.transaction() as session:
        row = session.get(Deployment, live)
        assert row is not None and row.status == "live", "the previous release stays live"


async def test_a_build_without_a_release_phase_goes_straight_to_its_start(
    platform: Platform,
) -> None:
    deployment = await platform.deploy({"index.html": "<h1>plain"})
    assert await platform.wait(deployment, {"live", "failed"}) == "live"
    assert await node_steps(platform) == ["shipway.runtime.go_live"]


async def test_a_config_change_of_a_release_without_one_never_asks_the_node_for_it(
    platform: Platform,
) -> None:
    first = await platform.deploy({"index.html": "<h1>plain"})
    assert await platform.wait(first, {"live", "failed"}) == "live", platform.reason(first)
    changed = await platform.set_config({"MARKER": "m2"})
    assert await platform.wait(changed, {"live", "failed"}) == "live", platform.reason(changed)
    assert await node_steps(platform) == ["shipway.runtime.go_live"]


def test_a_workflow_not_told_whether_its_release_has_one_asks_the_node() -> None:
    """Workflows started by older code have no `release_phase`: their node reads the release."""
    assert _may_have_release_phase(DeployInput(1), None)
    assert _may_have_release_phase(DeployInput(1, release_phase=True), None)
    assert not _may_have_release_phase(DeployInput(1, release_phase=False), None)
    assert not _may_have_release_phase(DeployInput(1, rollback=True), None)


async def test_a_newer_deploy_stops_a_release_phase_under_way(platform: Platform) -> None:
    slow = {"index.html": "<h1>slow", "Procfile": "release: echo waiting; sleep 619\n"}
    first = await platform.deploy(slow)
    await logged(platform, "release: waiting")
    assert sandboxed("sleep", "619")
    second = await platform.deploy({"index.html": "<h1>newer"})
    assert await platform.wait(first, {"superseded"}, timeout=30) == "superseded"
    assert await platform.wait(second, {"live", "failed"}) == "live"
    for _ in range(600):
        if not sandboxed("sleep", "619"):
            break
        await asyncio.sleep(0.05)
    assert not sandboxed("sleep", "619"), "the superseded release phase outlived it"
