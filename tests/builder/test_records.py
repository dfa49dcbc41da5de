"""A builder's records, beside the control plane (the store itself) and on another machine
(the control plane's builder API over HTTP): both hold a build for one attempt at a time,
tell a later attempt why the earlier one did not finish, and refuse a build that ended."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from shipway.accounts.roles import Principal
from shipway.apps import service as apps
from shipway.builder.records import Begun, BuildRecords
from shipway.builder.records.local import LocalRecords
from shipway.builder.records.remote import RemoteRecords
from shipway.deploys.launch import sources_dir
from shipway.errors import ServiceError
from shipway.releases.layers import LayerStore
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import AuditEntry, Build, Deployment, LogLine
from tests.builder.conftest import ControlPlane, push, set_config, tar_of


@pytest.fixture(params=["local", "remote"])
def records(
    request: pytest.FixtureRequest, store: Store, settings: Settings, tmp_path: Path
) -> Iterator[BuildRecords]:
    """The records of a builder beside the control plane (whose data dir is SETTINGS'), and of
    one on another machine, with its own data dir, asking that control plane over HTTP."""
    if request.param == "local":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        yield LocalRecords(store, settings.data_dir)
        return
    plane: ControlPlane = request.getfixturevalue("control_plane")
    remote = RemoteRecords(plane.url, plane.token, tmp_path / "elsewhere")
    yield remote
    remote.close()


def build_row(store: Store, build_id: int) -> Build:
    with store.transaction() as session:
        row = session.get(Build, build_id)
        assert row is not None
        return row


def deployment_status(store: Store, deployment_id: int) -> str:
    with store.transaction() as session:
        row = session.get(Deployment, deployment_id)
        assert row is not None
        return row.status


def test_a_queued_build_is_held_for_the_attempt_that_begins_it(
    store: Store, owner: Principal, records: BuildRecords
) -> None:
    pushed = push(store, owner)
    assert records.begin(pushed.build_id, pushed.deployment_id, "act.1", "b-1") == Begun(None)
    row = build_row(store, pushed.build_id)
    assert (row.status, row.builder, row.attempt) == ("building", "b-1", "act.1")
    assert row.started_at is not None
    assert deployment_status(store, pushed.deployment_id) == "building"


def test_a_later_attempt_takes_over_a_build_still_building_and_hears_why(
    store: Store, owner: Principal, records: BuildRecords
) -> None:
    pushed = push(store, owner)
    assert records.begin(pushed.build_id, pushed.deployment_id, "act.1", "b-1") is not None
    again = records.begin(pushed.build_id, pushed.deployment_id, "act.2", "b-2")
    assert again == Begun("the attempt on b-1 did not finish (stopped or cut off)")
    assert records.standing(pushed.build_id) == ("building", "act.2")
    assert build_row(store, pushed.build_id).builder == "b-2"


def test_a_build_superseded_before_it_started_is_not_begun(
    store: Store, owner: Principal, records: BuildRecords
) -> None:
    first = push(store, owner)
    push(store, owner)  # a newer push to the same environment
    assert records.begin(first.build_id, first.deployment_id, "act.1", "b-1") is None
    row = build_row(store, first.build_id)
    assert (row.status, row.builder, row.attempt) == ("superseded", None, None)
    assert records.standing(first.build_id) == ("superseded", None)


def test_a_build_is_not_begun_for_a_deployment_of_another_build(
    store: Store, owner: Principal, records: BuildRecords
) -> None:
    main, preview = push(store, owner), push(store, owner, branch="feature")
    assert records.begin(main.build_id, preview.deployment_id, "act.1", "b-1") is None
    assert records.begin(424242, main.deployment_id, "act.1", "b-1") is None
    assert records.standing(main.build_id) == ("queued", None)
    assert records.standing(preview.build_id) == ("queued", None)
    assert deployment_status(store, preview.deployment_id) == "queued"


def test_a_build_no_longer_in_the_store_stands_cancelled(records: BuildRecords) -> None:
    assert records.standing(424242) == ("cancelled", None)


def test_the_config_is_the_apps_own_with_its_secret_values_in_plain(
    store: Store, owner: Principal, settings: Settings, records: BuildRecords
) -> None:
    with store.transaction() as session:
        apps.create(session, owner, "other")
    data = settings.data_dir
    set_config(store, owner, data, "web", {"API_TOKEN": "hunter2", "DB_PASS": "pw-9"}, True)
    set_config(store, owner, data, "web", {"DEBUG": "on"}, secret=False)
    set_config(store, owner, data, "other", {"OTHER_TOKEN": "not-webs"}, secret=True)
    found = records.config(push(store, owner).app_id)
    assert found.values == {"API_TOKEN": "hunter2", "DB_PASS": "pw-9", "DEBUG": "on"}
    assert found.secret == {"API_TOKEN", "DB_PASS"}
    assert sorted(found.secret_values()) == ["hunter2", "pw-9"]


def test_log_lines_are_kept_in_order_and_a_retried_batch_changes_none(
    store: Store, owner: Principal, records: BuildRecords
) -> None:
    build = push(store, owner).build_id
    assert records.lines.last_seq("build", build) == 0
    records.lines.insert("build", build, [(seq, f"line {seq}") for seq in range(1, 2501)])
    records.lines.insert("build", build, [(1, "again"), (2501, "line 2501")])
    records.lines.end("build", build, 2501, "succeeded")
    assert records.lines.last_seq("build", build) == 2501
    with store.transaction() as session:
        stored = session.execute(
            select(LogLine.seq, LogLine.line)
            .where(LogLine.kind == "build", LogLine.owner_id == build)
            .order_by(LogLine.seq)
        ).all()
    assert [tuple(row) for row in stored] == [(s, f"line {s}") for s in range(1, 2502)]


def test_the_audit_entry_of_a_build_start_names_its_builder(
    store: Store, owner: Principal, settings: Settings
) -> None:
    pushed = push(store, owner)
    LocalRecords(store, settings.data_dir).begin(
        pushed.build_id, pushed.deployment_id, "act.1", "b-1"
    )
    with store.transaction() as session:
        payload = session.scalar(
            select(AuditEntry.payload).where(AuditEntry.action == "build.start")
        )
    assert payload == {"app": "web", "builder": "b-1"}


@pytest.fixture
def remote(control_plane: ControlPlane, tmp_path: Path) -> Iterator[RemoteRecords]:
    """A builder on another machine, with its own data dir, and the requests it makes."""
    records = RemoteRecords(control_plane.url, control_plane.token, tmp_path / "elsewhere")
    yield records
    records.close()


def sent(records: RemoteRecords) -> list[tuple[str, str]]:
    """From now on, the method and path of each request RECORDS makes."""
    made: list[tuple[str, str]] = []
    records.http.event_hooks["request"].append(
        lambda request: made.append((request.method, request.url.path))
    )
    return made


def test_a_builder_elsewhere_learns_where_nats_is_from_the_control_plane(
    remote: RemoteRecords, settings: Settings
) -> None:
    assert remote.connect() == {
        "temporal": None,
        "namespace": settings.temporal_namespace,
        "nats": "nats://n:1",
    }


def test_a_builder_elsewhere_fetches_the_pushed_source_into_its_own_data_dir(
    store: Store, owner: Principal, settings: Settings, remote: RemoteRecords
) -> None:
    build = push(store, owner).build_id
    archive = tar_of({"index.html": "<h1>hi", "big.bin": bytes(range(256)) * 8192})
    pushed_to = sources_dir(settings.data_dir) / f"{build}.tar"
    pushed_to.write_bytes(archive)
    fetched = remote.source(build, str(pushed_to))
    assert fetched == remote.data_dir / "sources" / f"{build}.tar"
    assert fetched.read_bytes() == archive
    assert sorted(p.name for p in fetched.parent.iterdir()) == [f"{build}.tar"]


def test_a_source_the_control_plane_lacks_is_an_error_that_says_so(
    store: Store, owner: Principal, remote: RemoteRecords
) -> None:
    build = push(store, owner).build_id
    with pytest.raises(ServiceError, match=rf"no source for build {build} \(HTTP 404\)"):
        remote.source(build, "/nowhere.tar")
    assert list((remote.data_dir / "sources").iterdir()) == []


def test_a_builder_elsewhere_sends_only_the_layers_the_control_plane_lacks(
    tmp_path: Path, settings: Settings, remote: RemoteRecords
) -> None:
    def tree(name: str, files: dict[str, str]) -> Path:
        root = tmp_path / name
        for path, text in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
        return root

    ours = LayerStore(remote.data_dir / "layers")
    theirs = LayerStore(settings.data_dir / "layers")
    shared = ours.add(tree("a", {"app.py": "print(1)"}))
    assert theirs.add(tree("a2", {"app.py": "print(1)"})) == shared
    new = ours.add(tree("b", {"node_modules/x/index.js": "module.exports = 1", "run": "x"}))
    requests = sent(remote)
    remote.publish([shared, new, new], remote.data_dir / "layers")
    path = f"/api/v1/builder/layers/{new}"
    assert requests == [
        ("HEAD", f"/api/v1/builder/layers/{shared}"),
        ("HEAD", path),
        ("PUT", path),
    ]
    received = theirs.path(new) / "node_modules" / "x" / "index.js"
    assert received.read_text() == "module.exports = 1"


def test_a_token_the_control_plane_refuses_is_an_error_that_says_so(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    stranger = RemoteRecords(control_plane.url, "not-a-token", tmp_path / "elsewhere")
    try:
        with pytest.raises(ServiceError, match=r"the control plane answered: .*\(HTTP 401\)"):
            stranger.standing(1)
    finally:
        stranger.close()
