"""Add-ons in the store, with real servers: attach, refuse bad input without making or
dropping anything, detach, back up and restore, previews' own copies, and the audit trail."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from shipway.accounts.roles import Principal
from shipway.addons import redis, service
from shipway.addons.servers import Servers
from shipway.apps import config
from shipway.apps.secretbox import SecretBox
from shipway.deploys.activities import DeployActivities
from shipway.deploys.lifecycle import DeploymentStatus
from shipway.deploys.workflow import Outcome
from shipway.errors import Conflict, NotFound, ValidationError
from shipway.store import Store
from shipway.store.tables import Addon, App, AuditEntry, Deployment, Environment
from tests.addons.conftest import run
from tests.addons.test_servers import connect
from tests.helpers import new_owner


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.load(tmp_path)


@pytest.fixture
def owner(store: Store) -> Principal:
    return new_owner(store, "web", "other")


def create(
    store: Store,
    servers: Servers,
    box: SecretBox,
    owner: Principal,
    kind: str = "postgres",
    app: str = "web",
    **kwargs: object,
) -> service.Created:
    return run(service.create(store, servers, box, owner, app, kind, **kwargs))  # type: ignore[arg-type]


def actions(store: Store) -> list[str]:
    with store.transaction() as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def addon_names(store: Store) -> list[str]:
    with store.transaction() as session:
        return sorted(session.scalars(select(Addon.name)))


def test_an_add_on_sets_its_url_as_a_secret_the_app_cannot_overwrite(
    store: Store, servers: Servers, box: SecretBox, owner: Principal
) -> None:
    created = create(store, servers, box, owner)
    assert created.addon["name"] == "web-postgres" and created.addon["env_var"] == "DATABASE_URL"
    assert created.deployment is None, "nothing is live yet: the next push takes the URL"
    with store.transaction() as session:
        (var,) = config.list_vars(session, owner, "web")
        assert var.key == "DATABASE_URL" and var.secret
        url = box.decrypt(var.value)
    connect(servers, url).close()
    assert "addon.create" in actions(store)
    for change in (
        {"values": {"DATABASE_URL": "sqlite://"}},
        {"values": {}, "unset": ["DATABASE_URL"]},
    ):
        with (
            store.transaction() as session,
            pytest.raises(Conflict, match="belongs to the add-on web-postgres"),
        ):
            config.change(session, owner, "web", box=box, **change)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "kwargs", "error", "message"),
    [
        ("mysql", {}, ValidationError, "unknown add-on kind 'mysql'"),
        ("postgres", {"name": "Bad Name"}, ValidationError, "add-on name 'Bad Name'"),
        ("postgres", {"env_var": "PORT"}, ValidationError, "reserved"),
        ("redis", {"name": "taken"}, Conflict, "an add-on named 'taken' exists already"),
        ("redis", {"env_var": "DATABASE_URL"}, Conflict, "DATABASE_URL is set on web already"),
    ],
)
def test_bad_add_ons_are_refused_before_anything_is_made(
    store: Store,
    servers: Servers,
    box: SecretBox,
    owner: Principal,
    kind: str,
    kwargs: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    create(store, servers, box, owner, name="taken")
    made_before = set(run(_databases(servers))), set(redis.names(servers.data_dir))
    with pytest.raises(error, match=message):
        create(store, servers, box, owner, kind, **kwargs)
    assert (set(run(_databases(servers))), set(redis.names(servers.data_dir))) == made_before
    assert addon_names(store) == ["taken"]


async def _databases(servers: Servers) -> list[str]:
    await servers.postgres.ensure()
    import asyncio

    return await asyncio.to_thread(servers.postgres.databases)


def test_destroy_needs_the_app_named_and_then_drops_the_data(
    store: Store, servers: Servers, box: SecretBox, owner: Principal
) -> None:
    made = create(store, servers, box, owner, "redis")
    for confirm in (None, "other"):
        with pytest.raises(ValidationError, match="confirm with --confirm web"):
            run(service.destroy(store, servers, box, owner, "web-redis", confirm))
    with store.transaction() as session:
        resource = session.scalar(select(Addon.resource))
    assert servers.redis(resource).pid is not None, "refused: nothing dropped"
    assert made.addon["env_var"] == "REDIS_URL"
    run(service.destroy(store, servers, box, owner, "web-redis", "web"))
    assert addon_names(store) == [] and not servers.redis(resource).home.exists()
    with store.transaction() as session:
        assert config.list_vars(session, owner, "web") == []
    assert actions(store)[-1] == "addon.destroy"
    with pytest.raises(NotFound):
        run(service.destroy(store, servers, box, owner, "web-redis", "web"))


def test_backups_are_listed_with_sizes_and_restore_the_data(
    store: Store, servers: Servers, box: SecretBox, owner: Principal
) -> None:
    create(store, servers, box, owner)
    with store.transaction() as session:
        url = box.decrypt(session.scalar(select(Addon.url)))
    with connect(servers, url) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (1)")
    made = run(service.back_up(store, servers, owner, "web-postgres"))
    with connect(servers, url) as conn:
        conn.execute("DELETE FROM t")
    with store.transaction() as session:
        addon = service.get(session, owner, "web-postgres")[0]
    (listed,) = service.backups(servers, addon)
    assert listed["id"] == made["id"] and listed["bytes"] == made["bytes"] > 0
    with pytest.raises(NotFound, match=r"has no backup '\.\./x'"):
        run(service.restore(store, servers, owner, "web-postgres", "../x"))
    run(service.restore(store, servers, owner, "web-postgres", made["id"]))
    with connect(servers, url) as conn:
        assert conn.execute("SELECT n FROM t").fetchall() == [(1,)]
    assert actions(store)[-2:] == ["addon.backup", "addon.restore"]


def preview_deployment(store: Store, branch: str) -> int:
    with store.transaction() as session:
        app = session.scalar(select(App).where(App.name == "web"))
        assert app is not None
        env = Environment(app_id=app.id, name=branch, kind="preview", branch=branch)
        session.add(env)
        session.flush()
        deployment = Deployment(app_id=app.id, environment_id=env.id, status="queued")
        session.add(deployment)
        session.flush()
        return deployment.id


def test_a_preview_gets_a_database_of_its_own_fresh_or_forked_and_never_production(
    store: Store, servers: Servers, box: SecretBox, owner: Principal, tmp_path: Path
) -> None:
    create(store, servers, box, owner)
    with store.transaction() as session:
        production_url = box.decrypt(session.scalar(select(Addon.url)))
        app_id = session.scalar(select(App.id).where(App.name == "web"))
        hidden = service.attached(session, app_id, "early", box, servers.data_dir)
    assert hidden.env == {} and hidden.hidden == {"DATABASE_URL"}, "no copy yet: no URL at all"
    with connect(servers, production_url) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (7)")

    run(service.prepare(store, servers, box, preview_deployment(store, "fresh")))
    with store.transaction() as session:
        seen = service.attached(session, app_id, "fresh", box, servers.data_dir)
    assert set(seen.env) == {"DATABASE_URL"} and seen.env["DATABASE_URL"] != production_url
    assert [m.target for m in seen.mounts] == ["/run/shipway/postgres"]
    with (
        connect(servers, seen.env["DATABASE_URL"]) as conn,
        pytest.raises(psycopg.errors.UndefinedTable),
    ):
        conn.execute("SELECT n FROM t")

    with store.transaction() as session:
        session.scalar(select(Addon).where(Addon.name == "web-postgres")).fork = True
    run(service.prepare(store, servers, box, preview_deployment(store, "forked")))
    with store.transaction() as session:
        forked = service.attached(session, app_id, "forked", box, servers.data_dir)
    with connect(servers, forked.env["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT n FROM t").fetchall() == [(7,)]
        conn.execute("INSERT INTO t VALUES (8)")
    with connect(servers, production_url) as conn:
        assert conn.execute("SELECT n FROM t").fetchall() == [(7,)], "production is untouched"
    assert addon_names(store) == ["web-postgres", "web-postgres--forked", "web-postgres--fresh"]

    # Deleting a preview removes its add-on; the servers drop what no add-on names.
    with store.transaction() as session:
        session.delete(session.scalar(select(Environment).where(Environment.name == "fresh")))
    run(service.keep(store, servers))
    assert addon_names(store) == ["web-postgres", "web-postgres--forked"]
    with pytest.raises(psycopg.OperationalError):
        connect(servers, seen.env["DATABASE_URL"])
    connect(servers, forked.env["DATABASE_URL"]).close()


def test_a_deploy_whose_add_on_server_cannot_start_fails_saying_so(
    store: Store, servers: Servers, box: SecretBox, owner: Principal
) -> None:
    create(store, servers, box, owner)
    with store.transaction() as session:
        app = session.scalar(select(App).where(App.name == "web"))
        assert app is not None
        env = session.scalar(
            select(Environment).where(
                Environment.app_id == app.id, Environment.name == "production"
            )
        )
        assert env is not None
        deployment = Deployment(app_id=app.id, environment_id=env.id, status="queued")
        session.add(deployment)
        session.flush()
        deployment_id = deployment.id
    conf = servers.postgres.data / "postgresql.conf"
    kept = conf.read_text()
    servers.postgres.stop()
    conf.write_text(kept + "\nno_such_setting = 1\n")
    try:
        outcome = run(
            DeployActivities(store, servers).release(
                Outcome(deployment_id, DeploymentStatus.DEPLOYING)
            )
        )
    finally:
        conf.write_text(kept)
    assert outcome.status is DeploymentStatus.FAILED
    assert outcome.reason is not None
    assert outcome.reason.startswith("add-ons: the postgres server exited while starting")
    with store.transaction() as session:
        assert session.get(Deployment, deployment_id).status == "failed"
    run(servers.postgres.ensure())
