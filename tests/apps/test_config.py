"""Config vars in the store, on SQLite and PostgreSQL: changes, snapshots and their audit."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from shipway.accounts.roles import Principal, Role
from shipway.apps import config, service
from shipway.apps.secretbox import SecretBox
from shipway.errors import Forbidden, NotFound, ValidationError
from shipway.store import Store
from shipway.store.tables import AuditEntry, ConfigVar, Organization


def change(store: Store, who: Principal, box: SecretBox, **kwargs: Any) -> config.Change:
    kwargs.setdefault("values", {})
    with store.transaction() as session:
        return config.change(session, who, "web", box=box, **kwargs)


def stored(store: Store) -> dict[str, tuple[str, bool]]:
    with store.transaction() as session:
        return {v.key: (v.value, v.secret) for v in session.scalars(select(ConfigVar))}


def audit(store: Store) -> list[AuditEntry]:
    with store.transaction() as session:
        query = select(AuditEntry).where(AuditEntry.action == "config.changed")
        return list(session.scalars(query.order_by(AuditEntry.id)))


def test_plain_values_are_stored_as_is_and_secrets_encrypted(
    store: Store, owner: Principal, box: SecretBox
) -> None:
    change(store, owner, box, values={"DEBUG": "1", "GREETING": "hé = 'x'"})
    change(store, owner, box, values={"API_KEY": "s3cret-value"}, secret=True)
    rows = stored(store)
    assert rows["DEBUG"] == ("1", False) and rows["GREETING"] == ("hé = 'x'", False)
    sealed, secret = rows["API_KEY"]
    assert secret and "s3cret" not in sealed and box.decrypt(sealed) == "s3cret-value"


def test_snapshot_environment_and_secret_values(
    store: Store, owner: Principal, box: SecretBox
) -> None:
    made = change(store, owner, box, values={"B": "plain", "A": "one"})
    change(store, owner, box, values={"TOKEN": "t0ken-123"}, secret=True)
    with store.transaction() as session:
        snap = config.snapshot(session, made.app.id)
    assert list(snap) == ["A", "B", "TOKEN"]
    assert snap["A"] == {"value": "one", "secret": False}
    assert snap["TOKEN"]["secret"] is True and snap["TOKEN"]["value"] != "t0ken-123"
    assert json.loads(json.dumps(snap)) == snap
    assert config.environment(snap, box) == {"A": "one", "B": "plain", "TOKEN": "t0ken-123"}
    assert config.secret_values(snap, box) == ["t0ken-123"]
    assert config.environment({}, box) == {} and config.secret_values({}, box) == []


def test_setting_a_key_again_replaces_its_value_and_secret_flag(
    store: Store, owner: Principal, box: SecretBox
) -> None:
    change(store, owner, box, values={"DB_URL": "postgres://a"}, secret=True)
    first = {v.key: v for v in change(store, owner, box, values={"X": "1"}).vars}["DB_URL"]
    change(store, owner, box, values={"DB_URL": "postgres://b"})
    assert stored(store)["DB_URL"] == ("postgres://b", False)
    change(store, owner, box, values={"DB_URL": "postgres://c"}, secret=True)
    value, secret = stored(store)["DB_URL"]
    assert secret and box.decrypt(value) == "postgres://c"
    with store.transaction() as session:
        row = session.scalars(select(ConfigVar).where(ConfigVar.key == "DB_URL")).one()
        assert row.created_at == first.created_at and row.updated_at > first.updated_at


def test_unset_removes_and_unknown_keys_change_nothing(
    store: Store, owner: Principal, box: SecretBox
) -> None:
    change(store, owner, box, values={"A": "1", "B": "2"})
    done = change(store, owner, box, unset=["A", "NEVER_SET"])
    assert (done.set, done.unset, done.changed) == ([], ["A"], True)
    assert [v.key for v in done.vars] == ["B"] and list(stored(store)) == ["B"]
    again = change(store, owner, box, unset=["A"])
    assert not again.changed and [v.key for v in again.vars] == ["B"]
    assert len(audit(store)) == 2


def test_one_change_is_one_audit_entry_with_names_never_values(
    store: Store, owner: Principal, box: SecretBox
) -> None:
    change(store, owner, box, values={"OLD": "x"})
    change(store, owner, box, values={"PASSWORD": "pa55word", "USER": "admin"}, unset=["OLD"])
    entry = audit(store)[-1]
    assert (entry.subject, entry.actor) == ("app:web", "user:acme")
    assert entry.payload == {"set": ["PASSWORD", "USER"], "unset": ["OLD"], "secret": False}
    assert "pa55word" not in json.dumps(entry.payload)


def test_viewers_list_deployers_change(store: Store, owner: Principal, box: SecretBox) -> None:
    viewer = dataclasses.replace(owner, role=Role.VIEWER, actor="token:1")
    deployer = dataclasses.replace(owner, role=Role.DEPLOYER, actor="token:2")
    with pytest.raises(Forbidden, match="deployer"):
        change(store, viewer, box, values={"A": "1"})
    change(store, deployer, box, values={"A": "1"})
    with store.transaction() as session:
        assert [v.key for v in config.list_vars(session, viewer, "web")] == ["A"]


def test_another_tenants_app_is_not_found(store: Store, owner: Principal, box: SecretBox) -> None:
    change(store, owner, box, values={"A": "1"})
    with store.transaction() as session:
        other = Organization(name="globex")
        session.add(other)
        session.flush()
        stranger = Principal(organization_id=other.id, role=Role.OWNER, actor="user:globex")
    with pytest.raises(NotFound, match="no app named 'web'"):
        change(store, stranger, box, values={"A": "2"})
    with store.transaction() as session, pytest.raises(NotFound):
        config.list_vars(session, stranger, "web")
    assert stored(store) == {"A": ("1", False)}


def test_an_app_holds_at_most_200_vars(store: Store, owner: Principal, box: SecretBox) -> None:
    change(store, owner, box, values={f"VAR_{i}": str(i) for i in range(199)})
    with pytest.raises(
        ValidationError, match="at most 200 config vars; this change would make 201"
    ):
        change(store, owner, box, values={"ONE": "1", "TWO": "2"})
    change(store, owner, box, values={"ONE": "1", "TWO": "2"}, unset=["VAR_0"])
    assert len(stored(store)) == 200
    change(store, owner, box, values={"ONE": "again"})
    assert len(audit(store)) == 3


def test_deleting_the_app_deletes_its_vars(store: Store, owner: Principal, box: SecretBox) -> None:
    change(store, owner, box, values={"A": "1"})
    with store.transaction() as session:
        service.delete(session, owner, "web")
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(ConfigVar)) == 0


@pytest.mark.parametrize(
    ("values", "unset", "rule"),
    [
        ({}, [], "nothing to change"),
        ({"9LIVES": "x"}, [], r"must match ^[A-Za-z_][A-Za-z0-9_]*$"),
        ({"A\n": "x"}, [], "must match"),
        ({"A" * 256: "x"}, [], "at most 255 characters"),
        ({"PORT": "80"}, [], "reserved"),
        ({"SHIPWAY_TOKEN": "x"}, [], "reserved"),
        ({}, ["SHIPWAY_DATA"], "reserved"),
        ({"A": "a\0b"}, [], "NUL"),
        ({"A": "é" * 16385}, [], "at most 32 KiB"),
        ({"A": 1}, [], "must be a string"),
        ({"A": "1", "B": "2"}, ["B"], "B cannot be both set and unset"),
    ],
)
def test_a_bad_change_states_the_rule_and_stores_nothing(
    store: Store, owner: Principal, box: SecretBox, values: Any, unset: list[str], rule: str
) -> None:
    change(store, owner, box, values={"B": "kept"})
    with pytest.raises(ValidationError) as refused:
        change(store, owner, box, values=values, unset=unset)
    assert rule in refused.value.message
    assert stored(store) == {"B": ("kept", False)} and len(audit(store)) == 1


def test_the_limits_themselves_are_allowed(store: Store, owner: Principal, box: SecretBox) -> None:
    big, key = "x" * config.MAX_VALUE, "K" * config.MAX_KEY
    change(store, owner, box, values={key: big, "_lower_9": ""})
    change(store, owner, box, values={"BIG_SECRET": big}, secret=True)
    assert box.decrypt(stored(store)["BIG_SECRET"][0]) == big
    assert stored(store)[key] == (big, False) and stored(store)["_lower_9"] == ("", False)


def test_vars_come_in_the_same_order_on_every_database(
    store: Store, owner: Principal, box: SecretBox
) -> None:
    made = change(store, owner, box, values={"b": "1", "_x": "2", "A": "3", "a_b": "4"})
    assert [v.key for v in made.vars] == ["A", "_x", "a_b", "b"]
    with store.transaction() as session:
        assert list(config.snapshot(session, made.app.id)) == ["A", "_x", "a_b", "b"]
        assert [v.key for v in config.list_vars(session, owner, "web")] == ["A", "_x", "a_b", "b"]
