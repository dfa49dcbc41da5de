"""GET /api/v1/functions/{name}/triggers: a function's schedules, for its organization only."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from shipway.store import Store
from shipway.store.tables import Function, FunctionTrigger
from tests.helpers import auth

SOURCE = "function handler(event) { return 1 }"


def test_a_functions_triggers_by_name_with_their_params(api: TestClient, store: Store) -> None:
    assert api.post("/api/v1/functions/report", json={"source": SOURCE, "runtime": "js"}).is_success
    assert api.get("/api/v1/functions/report/triggers").json() == []
    with store.transaction() as session:
        fn = session.scalar(select(Function).where(Function.name == "report"))
        assert fn is not None
        session.add(FunctionTrigger(function_id=fn.id, name="weekly", spec="@weekly"))
        session.add(
            FunctionTrigger(function_id=fn.id, name="daily", spec="0 3 * * *", params={"n": 1})
        )
    found = api.get("/api/v1/functions/report/triggers").json()
    assert [(t["name"], t["spec"], t["params"]) for t in found] == [
        ("daily", "0 3 * * *", {"n": 1}),
        ("weekly", "@weekly", {}),
    ]
    assert all(t["created_at"] for t in found)


def test_an_unknown_or_another_organizations_function_has_none(api: TestClient) -> None:
    assert api.post("/api/v1/functions/report", json={"source": SOURCE, "runtime": "js"}).is_success
    assert api.get("/api/v1/functions/nope/triggers").status_code == 404
    other = api.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"]
    refused = api.get("/api/v1/functions/report/triggers", headers=auth(other))
    assert refused.status_code == 404
