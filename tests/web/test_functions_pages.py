"""The functions list, a function's page (versions, schedules in words with their next runs,
runs, the invoke form) and a run's page; what each role sees and what bad input gets."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shipway.accounts.roles import Role
from shipway.apps.secretbox import SecretBox
from shipway.context import Context
from shipway.functions.invoke import Invoker
from shipway.functions.outcome import Outcome, RunStatus
from shipway.functions.registry import Registry
from shipway.functions.schedules import triggers
from shipway.settings import Settings
from shipway.store import Store
from shipway.store.tables import Function, FunctionTrigger
from tests.api.conftest import FakeRuntime
from tests.web.conftest import Browser, csrf, token_of

SOURCE = "function handler(event) { return event.params }"


class Echo:
    """A runtime that answers a call's params, prints two lines, and fails when asked to."""

    async def run(self, source: str, event: dict[str, Any], **_: Any) -> Outcome:
        params = event["params"]
        logs = ["\x1b[32mstarting\x1b[0m", "<script>alert(1)</script>"]
        if isinstance(params, dict) and params.get("fail"):
            error = {"message": "handler threw: no way", "stack": "at handler (fn.js:1)"}
            return Outcome(RunStatus.FAILED, error=error, logs=logs, duration=0.01)
        return Outcome(RunStatus.SUCCEEDED, result=params, logs=logs, duration=0.02)


@pytest.fixture
def services(store: Store, settings: Settings, admin_token: str) -> Context:
    """The API's services with functions running on an echoing runtime (and no Temporal: the
    schedules are written straight into the store)."""
    ctx = Context(settings, store, runtime=FakeRuntime())  # type: ignore[arg-type]
    box = SecretBox.load(settings.data_dir)
    ctx.invoker = Invoker(store, Registry(), {"js": Echo()}, box)
    return ctx


def deploy(admin: TestClient, admin_token: str, name: str = "report", times: int = 1) -> None:
    with TestClient(admin.app, raise_server_exceptions=False) as api:
        api.headers["Authorization"] = f"Bearer {admin_token}"
        for _ in range(times):
            made = api.post(f"/api/v1/functions/{name}", json={"source": SOURCE, "runtime": "js"})
            assert made.status_code == 201, made.text


def schedule(store: Store, name: str, **specs: str) -> None:
    with store.transaction() as session:
        fn = session.scalar(select(Function).where(Function.name == name))
        assert fn is not None
        for key, spec in specs.items():
            session.add(FunctionTrigger(function_id=fn.id, name=key, spec=spec, params={"n": 1}))


def invoke(browser: TestClient, name: str, params: str) -> Any:
    token = csrf(browser.get(f"/functions/{name}").text)
    return browser.post(f"/functions/{name}/invoke", data={"csrf": token, "params": params})


def test_the_list_shows_each_function_with_its_version_and_schedules_in_words(
    admin: TestClient, admin_token: str, store: Store
) -> None:
    assert "No functions yet" in admin.get("/functions").text
    deploy(admin, admin_token, "report", times=2)
    deploy(admin, admin_token, "hook")
    schedule(store, "report", nightly="0 3 * * *", often="*/15 * * * *")
    page = admin.get("/functions")
    assert page.status_code == 200
    assert 'href="/functions/report"' in page.text and 'href="/functions/hook"' in page.text
    assert "v2" in page.text
    assert "at 03:00 every day" in page.text and "every 15 minutes" in page.text
    assert "on call only" in page.text  # hook has no schedule


def test_a_functions_page_shows_its_schedules_next_runs_versions_and_runs(
    admin: TestClient, admin_token: str, store: Store
) -> None:
    deploy(admin, admin_token, times=2)
    spec = "R5/2030-12-01T00:00:00Z/PT2H"
    schedule(store, "report", batch=spec)
    assert invoke(admin, "report", '{"x": 1}').status_code == 303
    page = admin.get("/functions/report").text
    assert "every 2 hours from 2030-12-01 00:00 UTC, 5 times" in page
    planned = triggers.next_times(triggers.parse(spec), datetime.now(UTC), 3)
    shown = re.findall(r'<time datetime="([^"]+)">', page)
    assert shown == [t.isoformat() for t in planned]
    assert "2030-12-01 04:00:00 UTC" in page
    assert "v1" in page and 'class="pill s-live">running' in page  # v2 runs
    runs = page.split('id="runs"')[1]
    assert 'class="pill s-succeeded"' in runs and ">http<" in runs
    assert 'action="/functions/report/invoke"' in page and '<label for="params">' in page


def test_invoking_shows_the_run_with_its_result_and_log(
    admin: TestClient, admin_token: str
) -> None:
    deploy(admin, admin_token)
    done = invoke(admin, "report", '{"answer": 42}')
    assert done.status_code == 303
    run_page = done.headers["location"]
    assert re.fullmatch(r"/functions/report/runs/\d+", run_page)
    page = admin.get(run_page).text
    assert "flash ok" in page and "succeeded" in page
    assert "&#34;answer&#34;: 42" in page
    assert '<span class="fg2">starting</span>' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    run_id = run_page.rsplit("/", 1)[1]
    moved = admin.get(f"/runs/{run_id}")
    assert moved.status_code == 303 and moved.headers["location"] == run_page


def test_a_failing_run_is_flashed_and_shows_its_error(admin: TestClient, admin_token: str) -> None:
    deploy(admin, admin_token)
    done = invoke(admin, "report", '{"fail": true}')
    page = admin.get(done.headers["location"]).text
    assert "flash bad" in page and "failed: handler threw: no way" in page
    assert 'role="alert">handler threw: no way' in page and "fn.js:1" in page


@pytest.mark.parametrize("params", ["{nope", '{"a": 1,}', "[1, 2"])
def test_params_that_are_not_json_get_a_clear_message_on_the_form(
    admin: TestClient, admin_token: str, params: str
) -> None:
    deploy(admin, admin_token)
    answer = invoke(admin, "report", params)
    assert answer.status_code == 422
    assert "The params are not JSON" in answer.text and "line 1, column" in answer.text
    assert 'aria-invalid="true"' in answer.text
    kept = answer.text.split('id="params"')[1].split("</textarea>")[0]
    assert params.replace('"', "&#34;") in kept or params in kept
    assert "No runs yet" in answer.text


def test_empty_params_are_an_empty_object(admin: TestClient, admin_token: str) -> None:
    deploy(admin, admin_token)
    page = admin.get(invoke(admin, "report", "  ").headers["location"]).text
    assert "flash ok" in page and "{}" in page


def test_a_viewer_sees_no_invoke_form_and_is_refused_anyway(
    browser: Browser, admin: TestClient, admin_token: str, store: Store
) -> None:
    deploy(admin, admin_token)
    viewer = browser(token_of(store, Role.VIEWER))
    page = viewer.get("/functions/report")
    assert page.status_code == 200
    assert "Invoke" not in page.text and "<textarea" not in page.text
    assert "/invoke" not in page.text
    token = csrf(viewer.get("/apps").text)
    refused = viewer.post("/functions/report/invoke", data={"csrf": token, "params": "{}"})
    assert refused.status_code == 303
    shown = viewer.get(refused.headers["location"]).text
    assert "flash bad" in shown and "deployer role" in shown
    assert "No runs yet" in shown


def test_invoking_without_the_forms_csrf_token_is_refused(
    admin: TestClient, admin_token: str
) -> None:
    deploy(admin, admin_token)
    answer = admin.post("/functions/report/invoke", data={"params": "{}"})
    assert answer.status_code == 403 and "CSRF" in answer.text
    assert "No runs yet" in admin.get("/functions/report").text


@pytest.mark.parametrize(
    "path",
    [
        "/functions/nope",
        "/functions/report/runs/999",
        "/functions/report/runs/0",
        "/functions/report/runs/x",
        "/functions/report/runs/99999999999",
        "/functions/report/runs/" + "9" * 5000,
        "/runs/999",
        "/runs/-1",
    ],
)
def test_unknown_functions_and_runs_get_a_404_page(
    admin: TestClient, admin_token: str, path: str
) -> None:
    deploy(admin, admin_token)
    answer = admin.get(path)
    assert answer.status_code == 404, answer.text
    assert "<html" in answer.text and "Not found" in answer.text


def test_a_run_is_shown_only_under_its_own_function(admin: TestClient, admin_token: str) -> None:
    deploy(admin, admin_token, "report")
    deploy(admin, admin_token, "hook")
    run_page = invoke(admin, "report", "{}").headers["location"]
    other = admin.get(run_page.replace("/report/", "/hook/"))
    assert other.status_code == 404 and "hook has no run" in other.text


def test_another_organizations_functions_are_not_found(
    browser: Browser, admin: TestClient, admin_token: str
) -> None:
    deploy(admin, admin_token)
    run_page = invoke(admin, "report", "{}").headers["location"]
    with TestClient(admin.app, raise_server_exceptions=False) as api:
        api.headers["Authorization"] = f"Bearer {admin_token}"
        owner = api.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"]
    other = browser(owner)
    assert "report" not in other.get("/functions").text
    assert other.get("/functions/report").status_code == 404
    assert other.get(run_page).status_code == 404


@dataclass
class Schedules:
    """Stands in for Temporal's client: records the schedules it is asked to make."""

    made: list[str] = field(default_factory=list)

    async def create_schedule(self, schedule_id: str, schedule: Any) -> None:
        self.made.append(schedule_id)


def deploy_form(browser: TestClient, page: str, action: str, **fields: str) -> Any:
    token = csrf(browser.get(page).text)
    return browser.post(action, data={"csrf": token, **fields})


def stored(store: Store, name: str) -> Function | None:
    with store.transaction() as session:
        return session.scalar(select(Function).where(Function.name == name))


def test_the_list_has_a_labelled_deploy_form(admin: TestClient) -> None:
    page = admin.get("/functions").text
    assert 'action="/functions"' in page and 'href="#deploy"' in page
    for part in ("name", "runtime", "source", "schedules", "params"):
        assert f'<label for="deploy-{part}">' in page and f'id="deploy-{part}"' in page
    assert '<option value="js"' in page and '<option value="python"' in page


@pytest.mark.parametrize(
    ("runtime", "source"),
    [("js", SOURCE), ("python", "def handler(event):\n    return event['params']\n")],
)
def test_deploying_from_the_form_compiles_stores_and_shows_the_function(
    admin: TestClient, store: Store, runtime: str, source: str
) -> None:
    done = deploy_form(
        admin, "/functions", "/functions", name="hello", runtime=runtime, source=source
    )
    assert done.status_code == 303 and done.headers["location"] == "/functions/hello"
    page = admin.get("/functions/hello").text
    assert "flash ok" in page and f"Deployed hello v1 ({runtime})" in page
    fn = stored(store, "hello")
    assert fn is not None and fn.runtime == runtime and fn.version == 1
    assert 'action="/functions/hello/deploy"' in page and "Deploy v2" in page
    assert f'<option value="{runtime}" selected>' in page


def test_the_forms_schedules_and_their_params_become_the_functions_triggers(
    admin: TestClient, store: Store, services: Context
) -> None:
    services.temporal = Schedules()  # type: ignore[assignment]
    done = deploy_form(
        admin,
        "/functions",
        "/functions",
        name="report",
        runtime="js",
        source=SOURCE,
        schedules="0 3 * * *\r\n\r\n  R5/2030-12-01T00:00:00Z/PT2H  \r\n",
        schedule_params='{"n": 7}',
    )
    assert done.status_code == 303
    assert "with schedules schedule-1, schedule-2" in admin.get("/functions/report").text
    with store.transaction() as session:
        found = session.scalars(select(FunctionTrigger).order_by(FunctionTrigger.name)).all()
        assert [(t.name, t.spec, t.params) for t in found] == [
            ("schedule-1", "0 3 * * *", {"n": 7}),
            ("schedule-2", "R5/2030-12-01T00:00:00Z/PT2H", {"n": 7}),
        ]
    assert len(services.temporal.made) == 2  # type: ignore[attr-defined]
    page = admin.get("/functions/report").text
    assert "at 03:00 every day" in page


BAD_SOURCE = "function handler(event) {\n  return event.params +\n}\n"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "  "}, "Enter the function&#39;s name."),
        ({"name": "Bad Name"}, "function name must be"),
        ({"runtime": "ruby"}, "runtime must be one of js, python"),
        ({"source": BAD_SOURCE}, "at line 3"),
        ({"source": "  "}, "Enter the function&#39;s code."),
        ({"schedules": "every tuesday"}, "every tuesday"),
        ({"schedules": "0 3 * * *", "schedule_params": "{nope"}, "The params are not JSON"),
        ({"schedule_params": '{"n": 1}'}, "add a schedule"),
    ],
)
def test_bad_input_to_the_deploy_form_is_shown_on_it_with_the_code_kept(
    admin: TestClient, store: Store, fields: dict[str, str], message: str
) -> None:
    sent = {"name": "hello", "runtime": "js", "source": SOURCE, **fields}
    answer = deploy_form(admin, "/functions", "/functions", **sent)
    assert answer.status_code == 422, answer.text
    assert 'id="deploy-problem"' in answer.text and message in answer.text
    kept = answer.text.split('id="deploy-source"')[1].split("</textarea>")[0]
    assert sent["source"].strip().replace("'", "&#39;") in kept
    assert stored(store, "hello") is None


def test_a_new_version_from_the_functions_page(admin: TestClient, admin_token: str) -> None:
    deploy(admin, admin_token)
    changed = "function handler(event) { return 2 }"
    done = deploy_form(
        admin, "/functions/report", "/functions/report/deploy", runtime="js", source=changed
    )
    assert done.status_code == 303 and done.headers["location"] == "/functions/report"
    page = admin.get("/functions/report").text
    assert "Deployed report v2 (js)" in page and "Deploy v3" in page


def test_a_compile_error_in_a_new_version_is_shown_on_the_functions_page(
    admin: TestClient, admin_token: str
) -> None:
    deploy(admin, admin_token)
    answer = deploy_form(
        admin, "/functions/report", "/functions/report/deploy", runtime="js", source=BAD_SOURCE
    )
    assert answer.status_code == 422
    assert "at line 3" in answer.text and 'aria-invalid="true"' in answer.text
    assert "return event.params +" in answer.text.split('id="deploy-source"')[1]
    assert "<h1>report" in answer.text and "Deploy v2" in answer.text


@pytest.mark.parametrize("action", ["/functions", "/functions/report/deploy"])
def test_deploying_without_the_forms_csrf_token_is_refused(
    admin: TestClient, store: Store, action: str
) -> None:
    answer = admin.post(action, data={"name": "report", "runtime": "js", "source": SOURCE})
    assert answer.status_code == 403 and "CSRF" in answer.text
    assert stored(store, "report") is None


def test_a_viewer_sees_no_deploy_forms_and_is_refused_anyway(
    browser: Browser, admin: TestClient, admin_token: str, store: Store
) -> None:
    deploy(admin, admin_token)
    viewer = browser(token_of(store, Role.VIEWER))
    for path in ("/functions", "/functions/report"):
        page = viewer.get(path).text
        assert "deploy-source" not in page and "Deploy a" not in page
        assert 'action="/functions"' not in page and "/deploy" not in page
    token = csrf(viewer.get("/apps").text)
    for action, back in (("/functions", "/functions"), ("/functions/report/deploy", None)):
        sent = {"csrf": token, "name": "other", "runtime": "js", "source": SOURCE}
        refused = viewer.post(action, data=sent)
        assert refused.status_code == 303
        shown = viewer.get(refused.headers["location"]).text
        assert "flash bad" in shown and "deployer role" in shown
        assert back is None or refused.headers["location"] == back
    fn = stored(store, "report")
    assert fn is not None and fn.version == 1 and stored(store, "other") is None
