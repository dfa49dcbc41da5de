"""/api/v1/audit/entries on SQLite and PostgreSQL: recording from other services (all or
nothing, retries safe), searching with rendered text, and what bad input gets."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shipway.audit.ingest import MAX_BATCH
from tests.helpers import auth, make_token

URL = "/api/v1/audit/entries"


def entry(**fields: Any) -> dict[str, Any]:
    return {
        "sequence": str(uuid.uuid4()),
        "actor": "service:flags",
        "action": "flag.toggled",
        "subject": "flag:1",
        "payload": {"flag": {"gid": "gid://plat/Flag/1"}, "on": True},
        "tags": ["flags"],
    } | fields


def searched(api: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = api.get(URL, params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def test_entries_are_recorded_once_and_found_by_payload(api: TestClient) -> None:
    one = entry()
    assert api.post(URL, json=one).json() == {"stored": 1, "duplicates": 0}
    batch = [one, entry(subject="flag:2", payload={"flag": {"gid": "gid://plat/Flag/2"}})]
    stored = api.post(URL, json=batch)
    assert stored.status_code == 201 and stored.json() == {"stored": 1, "duplicates": 1}

    where = json.dumps({"op": "EQ", "path": ["flag", "gid"], "value": "gid://plat/Flag/1"})
    [found] = searched(api, where=where)
    assert found["sequence"] == one["sequence"] and found["payload"] == one["payload"]
    assert found["actor"] == "service:flags" and found["tags"] == ["flags"]
    assert found["text"] == "service:flags flag.toggled flag:1"  # no template: generic
    assert [e["subject"] for e in searched(api, action="flag.*")] == ["flag:2", "flag:1"]
    assert [e["subject"] for e in searched(api, subject="flag:2")] == ["flag:2"]


def test_platform_actions_are_searchable_with_their_text(api: TestClient) -> None:
    assert api.post("/api/v1/apps", json={"name": "web"}).status_code == 201
    [created] = searched(api, action="app.create")
    assert created["subject"] == "app:web" and created["payload"]["plan"] == "free"
    assert created["text"] == f"{created['actor']} created app:web"
    assert searched(api, action="app.*", since="5m")[0]["id"] == created["id"]
    assert searched(api, action="app.*", until="2020-01-01T00:00:00Z") == []


def test_pages_follow_the_cursor(api: TestClient) -> None:
    api.post(URL, json=[entry(subject=f"flag:{i}") for i in range(5)])
    first = api.get(URL, params={"action": "flag.toggled", "limit": 3}).json()
    assert [e["subject"] for e in first["items"]] == ["flag:4", "flag:3", "flag:2"]
    rest = api.get(URL, params={"action": "flag.toggled", "cursor": first["next"]}).json()
    assert [e["subject"] for e in rest["items"]] == ["flag:1", "flag:0"] and rest["next"] is None


def test_tenants_see_only_their_own(api: TestClient) -> None:
    api.post(URL, json=entry())
    other = api.post("/api/v1/orgs", json={"name": "globex"}).json()
    globex = auth(other["owner_token"])
    assert api.get(URL, params={"action": "flag.toggled"}, headers=globex).json()["items"] == []


def test_a_viewer_searches_but_does_not_record(api: TestClient) -> None:
    viewer = auth(make_token(api, "viewer"))
    assert api.post(URL, json=entry(), headers=viewer).status_code == 403
    assert api.get(URL, headers=viewer).status_code == 200


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ([entry(), entry(action="Not An Action")], "entry 1: action must be dotted lowercase"),
        ([entry(), entry(sequence="7")], "entry 1: sequence must be a UUID"),
        (entry(payload=[1]), "payload must be a JSON object"),
        (entry(subject="flag"), "subject must be TYPE:ID"),
        (entry(extra=1), "unknown field extra"),
        (entry(payload={"note": {"k\u0000": 1}}), "must not contain NUL characters"),
        (entry(payload={"blob": "x" * 70_000}), "at most 65536 are taken"),
        ([entry() for _ in range(MAX_BATCH + 1)], "a batch holds at most 1000 entries"),
        ([], "send one entry"),
        ("not a list", "send one entry"),
    ],
)
def test_a_bad_batch_stores_nothing(api: TestClient, body: Any, says: str) -> None:
    refused = api.post(URL, json=body)
    assert refused.status_code == 422, refused.text
    assert says in refused.json()["error"]["message"]
    assert searched(api, action="flag.toggled") == []


def test_malformed_json_is_refused(api: TestClient) -> None:
    refused = api.post(URL, content=b"{nope", headers={"Content-Type": "application/json"})
    assert refused.status_code == 422 and "not valid JSON" in refused.text


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"where": '{"op": "LIKE", "path": ["a"], "value": 1}'}, "unknown op 'LIKE'"),
        ({"where": '{"op": "EQ", "path": "a.b", "value": 1}'}, "path must be a list of"),
        ({"where": '{"op": "GT", "path": ["a"], "value": [1]}'}, "GT takes a number or a string"),
        ({"where": "{nope"}, "not valid JSON"),
        ({"since": "yesterday"}, "since must be an ISO-8601 time"),
        ({"until": "2026-13-45"}, "until must be an ISO-8601 time"),
        ({"cursor": "abc"}, "not one a search handed out"),
    ],
)
def test_a_bad_search_says_what_is_wrong(
    api: TestClient, params: dict[str, str], says: str
) -> None:
    refused = api.get(URL, params=params)
    assert refused.status_code == 422, refused.text
    assert says in refused.json()["error"]["message"]
