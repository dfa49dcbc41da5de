"""Applying manifests in the store, on SQLite and PostgreSQL: a diff, idempotence, removal of
what a manifest no longer declares, and no taking over another manifest's functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.accounts.roles import Principal
from shipway.apps.secretbox import SecretBox
from shipway.errors import Conflict
from shipway.functions import manifest as manifests
from shipway.functions import service
from shipway.functions.declared import Declared
from shipway.store import Store
from tests.helpers import new_owner

REPORT = Declared(
    "report", "js", "function handler() { return 1 }", triggers={"daily": ("0 6 * * *", {})}
)
ROLLUP = Declared("rollup", "python", "def handler(event):\n    return 2\n")


@pytest.fixture
def owner(store: Store) -> Principal:
    return new_owner(store)


def apply(
    store: Store, who: Principal, box: SecretBox, name: str, declared: list[Declared], **kw: bool
) -> dict[str, tuple[str, list[str]]]:
    with store.transaction() as session:
        changes = manifests.apply(session, who, name, declared, box, **kw)
    return {c.function: (c.action, c.details) for c in changes}


def test_apply_creates_updates_and_removes_idempotently(
    store: Store, owner: Principal, tmp_path: Path
) -> None:
    box = SecretBox.load(tmp_path)
    assert apply(store, owner, box, "shipway.yml", [REPORT, ROLLUP]) == {
        "report": ("create", []),
        "rollup": ("create", []),
    }
    assert apply(store, owner, box, "shipway.yml", [REPORT, ROLLUP]) == {
        "report": ("unchanged", []),
        "rollup": ("unchanged", []),
    }
    slower = Declared("report", "js", REPORT.source, timeout=60)
    planned = apply(store, owner, box, "shipway.yml", [slower], dry_run=True)
    assert planned == {
        "report": ("update", ["timeout 30 → 60", "trigger daily removed"]),
        "rollup": ("delete", []),
    }
    with store.transaction() as session:  # a dry run changed nothing
        assert [f.name for f in service.list_functions(session, owner)] == ["report", "rollup"]
    assert apply(store, owner, box, "shipway.yml", [slower]) == planned
    with store.transaction() as session:
        [report] = service.list_functions(session, owner)
        assert (report.timeout, report.version, report.manifest) == (60, 2, "shipway.yml")


def test_a_manifest_adopts_a_lone_function_but_not_anothers(
    store: Store, owner: Principal, tmp_path: Path
) -> None:
    box = SecretBox.load(tmp_path)
    with store.transaction() as session:
        service.deploy(
            session, owner, "report", runtime="js", source=REPORT.source,
            settings=service.Settings(), box=box,
        )  # fmt: skip
    assert apply(store, owner, box, "app:web", [REPORT])["report"][0] == "update"
    with pytest.raises(Conflict, match="report is declared by app:web; remove it there first"):
        apply(store, owner, box, "shipway.yml", [REPORT])
    assert apply(store, owner, box, "app:web", [])["report"][0] == "delete"
    assert apply(store, owner, box, "shipway.yml", [REPORT])["report"][0] == "create"
