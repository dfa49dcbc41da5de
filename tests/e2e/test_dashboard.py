"""The dashboard in a real browser against a real `shipway up`: log in, watch a push's build
log stream to its end, roll back with the button, search the activity log, and a viewer's
read-only view; axe-core checks each page."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import accessible, chrome, log_in, screenshot
from tests.e2e.conftest import Instance
from tests.e2e.test_push import api, make_repo, push, wait_for

pytestmark = pytest.mark.e2e

__all__ = ["chrome"]

APP = "dash"
#: A stdlib web app saying its VERSION, with a build step slow enough to be watched.
SERVER = """
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = open("VERSION").read().strip().encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(VERSION)))
        self.end_headers()
        self.wfile.write(VERSION)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""
STEPS = """import sys, time
for n in range(1, 9):
    print(f"\\x1b[32mstep {n} of 8\\x1b[0m", flush=True)
    time.sleep(0.4)
"""
FILES = {
    "server.py": SERVER,
    "steps.py": STEPS,
    "Procfile": "web: python3 server.py\n",
    "pyproject.toml": '[project]\nname = "dash"\nversion = "1"\ndependencies = []\n',
    "shipway.yml": "build:\n  commands:\n    - python3 steps.py\n",
    "VERSION": "one\n",
}


def answer(instance: Instance) -> str | None:
    response = httpx.get(f"{instance.url}/", headers={"Host": f"{APP}.localhost"}, timeout=10)
    return response.text if response.status_code == 200 else None


def newest_build(instance: Instance, after: int) -> int | None:
    builds = api(instance, f"/apps/{APP}/builds")
    return builds[0]["id"] if builds and builds[0]["id"] > after else None


@pytest.fixture(scope="module")
def owner(chrome: Browser, instance: Instance) -> Page:
    return log_in(chrome, instance.url, instance.token)


def test_a_push_streams_its_build_log_into_the_open_page_to_the_end(
    owner: Page, instance: Instance, tmp_path: Path
) -> None:
    accessible(owner)
    screenshot(owner, "apps-empty")
    assert instance.cli("apps", "create", APP).returncode == 0
    repo = make_repo(tmp_path / APP, FILES)
    pushing: dict[str, subprocess.CompletedProcess[str]] = {}
    thread = threading.Thread(target=lambda: pushing.update(done=push(instance, repo, APP)))
    thread.start()
    build = wait_for(lambda: newest_build(instance, 0), 120, "the push's build")
    owner.goto(f"{instance.url}/apps/{APP}/builds/{build}")
    log = owner.locator("#build-log")
    at_open = log.locator("span.l").count()
    expect(log).to_have_attribute("data-stream", re.compile(f"/builds/{build}/stream"))
    expect(owner.locator("#build-status")).to_have_text("succeeded", timeout=120_000)
    expect(log).to_contain_text("Build succeeded")
    expect(log).to_contain_text("step 8 of 8")
    streamed = log.locator("span.l").count()
    assert streamed > at_open, "no line reached the page after it opened"
    assert log.locator("span.fg2").first.text_content() == "step 1 of 8"
    screenshot(owner, "build-log")
    accessible(owner)
    thread.join(timeout=180)
    assert pushing["done"].returncode == 0, pushing["done"].stderr


def test_the_rollback_button_brings_the_old_version_back(
    owner: Page, instance: Instance, tmp_path: Path
) -> None:
    wait_for(lambda: answer(instance) == "one", 60, "v1 to answer")
    repo = tmp_path / "second"
    make_repo(repo, {**FILES, "shipway.yml": "build: {}\n", "VERSION": "two\n"})
    assert push(instance, repo, APP, force=True).returncode == 0
    wait_for(lambda: answer(instance) == "two", 60, "v2 to answer")
    owner.goto(f"{instance.url}/apps/{APP}")
    accessible(owner)
    screenshot(owner, "app")
    owner.get_by_role("button", name="Roll back to v1").click()
    expect(owner.locator(".flash.ok")).to_contain_text("Rolling back")
    wait_for(lambda: answer(instance) == "one", 120, "v1 to answer again")

    # The route switches before the rollback's deployment is recorded as done.
    def v2_can_come_back() -> bool:
        owner.reload()
        return owner.get_by_role("button", name="Roll back to v2").count() == 1

    wait_for(v2_can_come_back, 60, "v2's rollback button")
    expect(owner.locator("#releases")).to_be_visible()


def test_searching_the_activity_log(owner: Page, instance: Instance) -> None:
    owner.goto(f"{instance.url}/activity")
    owner.get_by_label("Action").fill("app.create")
    owner.get_by_role("button", name="Search").click()
    results = owner.locator("#activity-rows")
    expect(results).to_contain_text(f"app:{APP}")
    expect(results).not_to_contain_text("deploy.")
    accessible(owner)
    screenshot(owner, "activity")


def test_a_viewer_sees_no_write_controls(chrome: Browser, instance: Instance) -> None:
    made = instance.cli("tokens", "create", "dash-viewer", "--role", "viewer", "--json")
    assert made.returncode == 0, made.stderr
    viewer = log_in(chrome, instance.url, json.loads(made.stdout)["token"])
    viewer.goto(f"{instance.url}/apps/{APP}")
    expect(viewer.get_by_role("heading", name=re.compile(APP))).to_be_visible()
    assert viewer.get_by_role("button", name=re.compile("Roll back")).count() == 0
    assert viewer.get_by_role("button", name="Set").count() == 0
    assert viewer.get_by_role("button", name="Scale").count() == 0
    assert viewer.locator("main form").count() == 0
    accessible(viewer)
    screenshot(viewer, "app-viewer")


@pytest.mark.parametrize(
    "page", ["apps", "functions", "activity", "delivery", "fleet", "tokens", "organizations"]
)
def test_each_page_and_its_forms_pass_axe(owner: Page, instance: Instance, page: str) -> None:
    owner.goto(f"{instance.url}/{page}")
    expect(owner.locator("main h1")).to_be_visible()
    accessible(owner)
