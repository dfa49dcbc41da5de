"""/api/v1/apps/{name}/env over a real store: listings hide secrets, bad input gets 422."""

from __future__ import annotations

import json
import stat
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from shipway.apps.secretbox import KEY_FILE, SecretBox
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import AuditEntry, ConfigVar
from tests.helpers import auth, make_token

ENV = "/api/v1/apps/web/env"


@pytest.fixture
def web(api: TestClient) -> TestClient:
    assert api.post("/api/v1/apps", json={"name": "web"}).status_code == 201
    return api


def counts(store: Store) -> tuple[int, ...]:
    with store.transaction() as session:
        return tuple(
            int(session.scalar(select(func.count()).select_from(t)) or 0)
            for t in (ConfigVar, AuditEntry)
        )


def test_set_list_and_unset(web: TestClient) -> None:
    assert web.get(ENV).json() == []
    changed = web.patch(ENV, json={"set": {"DEBUG": "1", "NAME": "web app"}})
    assert changed.status_code == 200, changed.text
    assert [(v["key"], v["value"], v["secret"]) for v in changed.json()] == [
        ("DEBUG", "1", False),
        ("NAME", "web app", False),
    ]
    assert web.get(ENV).json() == changed.json()
    assert set(changed.json()[0]) == {"key", "value", "secret", "updated_at"}

    after = web.patch(ENV, json={"unset": ["DEBUG"], "set": {"LEVEL": "info"}}).json()
    assert [v["key"] for v in after] == ["LEVEL", "NAME"]


def test_secrets_are_listed_as_stars_and_encrypted_at_rest(
    web: TestClient, store: Store, settings: Settings
) -> None:
    listing = web.patch(ENV, json={"set": {"API_KEY": "sk-live-123"}, "secret": True}).json()
    assert listing == [
        {"key": "API_KEY", "value": "***", "secret": True, "updated_at": listing[0]["updated_at"]}
    ]
    assert "sk-live-123" not in web.get(ENV).text
    with store.transaction() as session:
        sealed = session.scalars(select(ConfigVar.value)).one()
    assert "sk-live-123" not in sealed
    assert SecretBox.load(settings.data_dir).decrypt(sealed) == "sk-live-123"
    assert stat.S_IMODE((settings.data_dir / KEY_FILE).stat().st_mode) == 0o600


def test_a_change_is_one_audit_entry_naming_keys_only(web: TestClient, store: Store) -> None:
    web.patch(ENV, json={"set": {"OLD": "x"}})
    web.patch(ENV, json={"set": {"PASSWORD": "pa55word"}, "secret": True, "unset": ["OLD"]})
    with store.transaction() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "config.changed").order_by(AuditEntry.id)
        ).all()
    assert [r.payload for r in rows] == [
        {"set": ["OLD"], "unset": [], "secret": False},
        {"set": ["PASSWORD"], "unset": ["OLD"], "secret": True},
    ]
    assert all(r.subject == "app:web" and r.actor.startswith("token:") for r in rows)
    assert "pa55word" not in json.dumps([r.payload for r in rows])


def test_viewers_list_deployers_and_owners_change(web: TestClient) -> None:
    viewer, deployer = auth(make_token(web, "viewer")), auth(make_token(web, "deployer"))
    refused = web.patch(ENV, json={"set": {"A": "1"}}, headers=viewer)
    assert refused.status_code == 403 and "deployer" in refused.json()["error"]["message"]
    assert web.patch(ENV, json={"set": {"A": "1"}}, headers=deployer).status_code == 200
    assert web.patch(ENV, json={"set": {"B": "2"}}).status_code == 200
    assert [v["key"] for v in web.get(ENV, headers=viewer).json()] == ["A", "B"]
    assert web.get(ENV, headers=auth("swt_not-a-token")).status_code == 401


def test_an_unknown_app_is_404(web: TestClient, store: Store) -> None:
    before = counts(store)
    for response in (
        web.get("/api/v1/apps/nope/env"),
        web.patch("/api/v1/apps/nope/env", json={"set": {"A": "1"}}),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["message"] == "no app named 'nope'"
    assert counts(store) == before


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ({"set": {"1ST": "x"}}, r"'1ST' must match ^[A-Za-z_][A-Za-z0-9_]*$"),
        ({"set": {"MY-VAR": "x"}}, "must match"),
        ({"set": {"": "x"}}, "must match"),
        ({"set": {"A B": "x"}}, "must match"),
        ({"set": {"ÜBER": "x"}}, "must match"),
        ({"set": {"K" * 256: "x"}}, "at most 255 characters"),
        ({"set": {"PORT": "80"}}, "'PORT' is reserved"),
        ({"set": {"SHIPWAY_DATA": "/"}}, "'SHIPWAY_DATA' is reserved"),
        ({"unset": ["SHIPWAY_X"]}, "reserved"),
        ({"set": {"A": "nul\u0000byte"}}, "must not contain a NUL"),
        ({"set": {"A": "x" * (32 * 1024 + 1)}}, "at most 32 KiB"),
        ({"set": {"A": "€" * 11000}}, "at most 32 KiB"),
        ({"set": {"A": 1}}, "set.A: Input should be a valid string"),
        ({"set": {"A": None}}, "valid string"),
        ({"set": {"A": True}, "secret": True}, "valid string"),
        ({"set": "A=1"}, "valid dictionary"),
        ({"unset": "A"}, "valid list"),
        ({"secret": "yes", "set": {"A": "1"}}, "valid boolean"),
        ({"set": {"A": "1"}, "unset": ["A"]}, "A cannot be both set and unset"),
        ({}, "nothing to change"),
        ({"set": {}, "unset": []}, "nothing to change"),
        ({"secret": True}, "nothing to change"),
        ({"set": {"A": "1"}, "extra": 1}, "extra: Extra inputs are not permitted"),
        ([], "valid dictionary"),
    ],
)
def test_bad_changes_get_422_stating_the_rule(
    web: TestClient, store: Store, body: Any, rule: str
) -> None:
    web.patch(ENV, json={"set": {"KEPT": "yes"}})
    before = counts(store)
    response = web.patch(ENV, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid" and rule in error["message"], error
    assert counts(store) == before
    assert [v["key"] for v in web.get(ENV).json()] == ["KEPT"]


def test_an_app_holds_at_most_200_vars(web: TestClient, store: Store) -> None:
    full = {f"VAR_{i:03}": "v" for i in range(200)}
    assert web.patch(ENV, json={"set": full}).status_code == 200
    before = counts(store)
    response = web.patch(ENV, json={"set": {"ONE_MORE": "x"}})
    assert response.status_code == 422
    assert "at most 200 config vars" in response.json()["error"]["message"]
    assert counts(store) == before


def test_a_key_file_others_can_read_is_refused(web: TestClient, settings: Settings) -> None:
    web.patch(ENV, json={"set": {"A": "1"}, "secret": True})
    key = settings.data_dir / KEY_FILE
    key.chmod(0o644)
    response = web.patch(ENV, json={"set": {"B": "2"}, "secret": True})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "secret_key"
    assert str(key) in error["message"] and f"chmod 600 {key}" in error["message"]
    assert [v["key"] for v in web.get(ENV).json()] == ["A"]
