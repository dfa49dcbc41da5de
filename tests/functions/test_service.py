"""Functions in the store: versions are immutable, rollbacks add one, bad settings get 422."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from shipway.accounts.roles import Principal, Role
from shipway.apps.secretbox import SecretBox
from shipway.errors import Forbidden, NotFound, ValidationError
from shipway.functions import declared, service
from shipway.functions.invoke import CallRefused, Chain, _check_chain
from shipway.store import Store
from shipway.store.tables import AuditEntry, Function, Organization

SOURCE = "async function handler(event) { return 1 }"


@pytest.fixture
def owner(store: Store) -> Principal:
    with store.transaction() as session:
        org = Organization(name="acme", is_admin=True)
        session.add(org)
        session.flush()
        return Principal(org.id, Role.OWNER, "user:o")


def deploy(store: Store, who: Principal, box: SecretBox, **settings: object) -> int:
    with store.transaction() as session:
        return service.deploy(
            session,
            who,
            "report",
            runtime="js",
            source=str(settings.pop("source", SOURCE)),
            settings=service.Settings(**settings),  # type: ignore[arg-type]
            box=box,
        ).version


def test_each_deploy_is_a_new_version_and_rollback_adds_one(
    store: Store, owner: Principal, tmp_path: Path
) -> None:
    box = SecretBox.load(tmp_path)
    assert deploy(store, owner, box) == 1
    assert deploy(store, owner, box, source="function handler() { return 2 }") == 2
    with store.transaction() as session:
        back = service.rollback(session, owner, "report", 1)
        assert back.version == 3 and back.source == SOURCE
        assert back.description == "Rollback to v1"
        listed = [v.version for v in service.versions(session, owner, "report")]
        assert listed == [3, 2, 1]
        with pytest.raises(NotFound):
            service.rollback(session, owner, "report", 9)
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions == ["function.deploy", "function.deploy", "function.rollback"]


def test_settings_are_checked_and_secrets_encrypted(
    store: Store, owner: Principal, tmp_path: Path
) -> None:
    box = SecretBox.load(tmp_path)
    deploy(store, owner, box, environment={"REGION": "eu"}, secrets={"KEY": "s3cr3t"})
    with store.transaction() as session:
        fn = session.scalars(select(Function)).one()
        assert fn.environment["REGION"] == {"value": "eu", "secret": False}
        assert fn.environment["KEY"]["secret"] is True
        assert "s3cr3t" not in fn.environment["KEY"]["value"]
        assert box.decrypt(fn.environment["KEY"]["value"]) == "s3cr3t"
    for bad, says in [
        ({"timeout": 0}, "timeout must be a whole number from 1 to 900"),
        ({"timeout": 901}, "timeout"),
        ({"memory_mb": 8}, "memory must be a whole number from 16 to 2048"),
        ({"environment": {"1X": "a"}}, "environment variable name '1X'"),
        ({"webhook_url": "ftp://x"}, "webhook_url must be an http"),
        ({"source": "function handler() {}\0"}, "must not contain NUL"),
    ]:
        with pytest.raises(ValidationError) as failed:
            deploy(store, owner, box, **bad)
        assert says in failed.value.message


def test_names_runtimes_and_roles(store: Store, owner: Principal, tmp_path: Path) -> None:
    for name in ("Report", "1x", "a b", "x" * 64, ""):
        with pytest.raises(ValidationError):
            declared.check_name(name)
    assert declared.runtime_for("report.js") == "js"
    assert declared.runtime_for("report.py") == "python"
    assert declared.runtime_for("report.txt", "python") == "python"
    with pytest.raises(ValidationError, match="give it with --runtime"):
        declared.runtime_for("report.txt")
    with pytest.raises(ValidationError, match="runtime must be one of js, python"):
        declared.runtime_for("report.js", "ruby")
    viewer = Principal(owner.organization_id, Role.VIEWER, "token:2")
    with pytest.raises(Forbidden):
        deploy(store, viewer, SecretBox.load(tmp_path))
    other = Principal(owner.organization_id + 100, Role.OWNER, "token:3")
    deploy(store, owner, SecretBox.load(tmp_path))
    with store.transaction() as session, pytest.raises(NotFound):
        service.get(session, other, "report")


def test_pipelines_refuse_cycles_and_depth() -> None:
    _check_chain(Chain(("a", "b"), 1), "c")
    with pytest.raises(CallRefused, match="a call cycle is refused: a → b → a"):
        _check_chain(Chain(("a", "b"), 1), "a")
    with pytest.raises(CallRefused, match="calls may nest 8 deep at most"):
        _check_chain(Chain(tuple("abcdefgh"), 1), "z")
