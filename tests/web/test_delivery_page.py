"""The delivery page and an app's delivery cards: the four metrics of the organization's or an
app's production, as cards and day by day as charts; bad windows and unknown apps as pages."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shipway.accounts.roles import Role
from shipway.store import Store
from shipway.store.tables import Deployment, Environment
from shipway.store.types import utcnow
from tests.api.conftest import app_id
from tests.helpers import auth
from tests.web.conftest import Browser, token_of


def make_apps(admin: TestClient, admin_token: str, *names: str) -> None:
    for name in names:
        made = admin.post("/api/v1/apps", json={"name": name}, headers=auth(admin_token))
        assert made.status_code == 201, made.text


def deployed(
    store: Store, app: str, status: str, finished: datetime, committed: datetime | None = None
) -> None:
    """A production deployment of APP pushed at COMMITTED that ended as STATUS at FINISHED."""
    with store.transaction() as session:
        owner = app_id(store, app)
        env = session.scalar(
            select(Environment.id).where(
                Environment.app_id == owner, Environment.name == "production"
            )
        )
        assert env is not None
        session.add(
            Deployment(
                app_id=owner,
                environment_id=env,
                status=status,
                source="git",
                commit_sha="c" * 40 if committed else None,
                committed_at=committed,
                actor="token:1",
                created_at=finished - timedelta(minutes=2),
                finished_at=finished,
            )
        )


def cards(page: str) -> dict[str, str]:
    """Each card's title and its big figure."""
    found = re.findall(r'<h3>([^<]+)</h3>\s*<p class="big">([^<]+)</p>', page)
    return dict(found)


@pytest.fixture
def history(admin: TestClient, admin_token: str, store: Store) -> list[datetime]:
    """web: two changes live (lead times 1 h and 3 h), one failed, restored 30 min later;
    api: one change live (lead time 2 h). When the three changes went live."""
    make_apps(admin, admin_token, "web", "api")
    now = utcnow()
    two_days = now - timedelta(days=2)
    went_live = [two_days, now - timedelta(hours=4, minutes=30), now - timedelta(hours=1)]
    deployed(store, "web", "retired", went_live[0], committed=two_days - timedelta(hours=1))
    deployed(store, "web", "failed", now - timedelta(hours=5))
    deployed(store, "web", "live", went_live[1], now - timedelta(hours=7.5))
    deployed(store, "api", "live", went_live[2], committed=now - timedelta(hours=3))
    return went_live


def test_the_organizations_four_metrics_as_cards_and_charts(
    admin: TestClient, history: list[datetime]
) -> None:
    page = admin.get("/delivery")
    assert page.status_code == 200, page.text
    assert cards(page.text) == {
        "Deploy frequency": "3",
        "Lead time for changes": "2 h",
        "Change failure rate": "25%",
        "Time to restore": "30 min",
    }
    assert "1 of 4 changes failed" in page.text
    assert page.text.count('<svg class="chart"') == 4
    # Days are UTC days: shortly after midnight, today has none of the changes yet.
    per_day = Counter(at.date() for at in history)
    latest = per_day.get(utcnow().date(), 0)
    label = f"Deployments per day: highest {max(per_day.values())}, latest {latest}"
    assert f'aria-label="{label}"' in page.text
    assert page.text.count('<th scope="row">') == 4 * 30  # each chart's days, for screen readers
    assert '<option value="api">api</option>' in page.text
    assert '<option value="30" selected>last 30 days</option>' in page.text
    assert "day by day</a>" not in page.text  # the page is the one with the charts


def test_one_apps_metrics_over_another_window(admin: TestClient, history: list[datetime]) -> None:
    page = admin.get("/delivery", params={"app": "web", "days": "7"})
    assert page.status_code == 200, page.text
    assert cards(page.text) == {
        "Deploy frequency": "2",
        "Lead time for changes": "2 h",
        "Change failure rate": "33.3%",
        "Time to restore": "30 min",
    }
    assert '<option value="web" selected>web</option>' in page.text
    assert '<option value="7" selected>' in page.text
    assert page.text.count('<th scope="row">') == 4 * 7
    assert cards(admin.get("/delivery", params={"app": "api", "days": "2"}).text) == {
        "Deploy frequency": "1",
        "Lead time for changes": "2 h",
        "Change failure rate": "0%",
        "Time to restore": "—",
    }


def test_an_apps_page_shows_its_cards_with_a_link_to_its_charts(
    admin: TestClient, history: list[datetime]
) -> None:
    page = admin.get("/apps/web").text
    delivery = page.split('id="delivery"')[1].split('id="log"')[0]
    assert cards(delivery)["Change failure rate"] == "33.3%"
    assert 'href="/delivery?app=web"' in delivery


def test_a_window_without_deployments_is_zeros_and_dashes(
    admin: TestClient, admin_token: str
) -> None:
    make_apps(admin, admin_token, "web")
    page = admin.get("/delivery")
    assert page.status_code == 200
    assert cards(page.text) == {
        "Deploy frequency": "0",
        "Lead time for changes": "—",
        "Change failure rate": "—",
        "Time to restore": "—",
    }
    assert "nothing measured" in page.text


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"days": "0"}, 422),
        ({"days": "366"}, 422),
        ({"days": "x"}, 422),
        ({"app": "nope"}, 404),
        ({"app": "../delivery"}, 404),
        ({"app": "web", "days": "-1"}, 422),
    ],
)
def test_bad_windows_and_unknown_apps_get_a_4xx_page(
    admin: TestClient, admin_token: str, params: dict[str, str], status: int
) -> None:
    make_apps(admin, admin_token, "web")
    answer = admin.get("/delivery", params=params)
    assert answer.status_code == status, answer.text
    assert "<html" in answer.text and 'role="alert"' in answer.text


def test_a_viewer_reads_the_figures_with_no_form_that_changes_anything(
    browser: Browser, store: Store, history: list[datetime]
) -> None:
    viewer = browser(token_of(store, Role.VIEWER))
    page = viewer.get("/delivery").text
    assert cards(page)["Deploy frequency"] == "3"
    posts = re.findall(r'<form[^>]*method="post"[^>]*action="([^"]+)"', page)
    assert set(posts) <= {"/logout", "/switch"}


def test_another_organization_sees_its_own_figures_only(
    browser: Browser, admin: TestClient, admin_token: str, history: list[datetime]
) -> None:
    other = admin.post("/api/v1/orgs", json={"name": "globex"}, headers=auth(admin_token))
    globex = browser(other.json()["owner_token"])
    assert cards(globex.get("/delivery").text)["Deploy frequency"] == "0"
    assert globex.get("/delivery", params={"app": "web"}).status_code == 404
