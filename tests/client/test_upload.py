"""Deploying a source tar: the upload, the followed build log, how the deployment ended in
the words the pusher reads, and its exit code."""

from __future__ import annotations

from typing import Any

import pytest

from shipway.client.api import Api
from shipway.client.upload import Source, deploy, outcome
from shipway.embedded import ports
from shipway.errors import ClientError
from tests.cli.conftest import Server
from tests.gitserver.conftest import Shipway

URL = "http://app.localhost:8080"


def deployment(status: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, "url": URL, "build_id": 7, "release": None, "reason": None, **extra}


@pytest.mark.parametrize(
    ("given", "build", "said", "code"),
    [
        (deployment("live", release=4), "succeeded", f"Release v4 is live at {URL}", 0),
        (
            deployment("retired", release=4),
            "succeeded",
            "Release v4 went live; a newer deployment has since replaced it",
            0,
        ),
        (deployment("failed", reason="no stack"), "failed", "Build failed: no stack", 1),
        (
            deployment("failed", release=5, reason="web is not healthy"),
            "succeeded",
            "Build succeeded, but the deployment failed: web is not healthy",
            1,
        ),
        (
            deployment("superseded", reason="a newer push"),
            "superseded",
            "Build was superseded: a newer push",
            1,
        ),
        (deployment("cancelled"), None, "Build was cancelled", 1),
        (
            deployment("deploying"),
            "succeeded",
            "Still deploying after 600 s; follow it with: shipway builds logs 7 -f",
            1,
        ),
    ],
)
def test_outcome(given: dict[str, Any], build: str | None, said: str, code: int) -> None:
    assert outcome(given, build) == (f"-----> {said}", code)


def test_deploy_uploads_follows_and_waits_for_the_outcome(ship: Shipway) -> None:
    app = ship.create_app("client-upload")
    said: list[str] = []
    source = Source(
        app=app,
        chunks=[b"a tar", b" in two chunks"],
        origin="git",
        ref="refs/heads/main",
        sha="c0ffee",
    )
    assert deploy(Api(ship.url, ship.owner), source, said.append) == 0
    [sent] = ship.fake.uploads
    assert sent.tar == b"a tar in two chunks"
    assert sent.params == {"source": "git", "ref": "refs/heads/main", "sha": "c0ffee"}
    assert said == [
        "-----> Deploying to production of client-upload (build 101)",
        "step one",
        "step two",
        "step three",
        "-----> Release v3 is live at http://client-upload.localhost:8080",
    ]
    assert ship.fake.polls == 2  # the first answer was still deploying
    # Each time, the server was asked to answer once the deployment has ended, not at once.
    assert all(wait > 500 for wait in ship.fake.waits), ship.fake.waits


def test_a_failed_build_is_exit_code_1(ship: Shipway) -> None:
    app = ship.create_app("client-fails")
    ship.fake.script.end = ship.fake.script.status = "failed"
    ship.fake.script.reason = "npm ci exited 1"
    said: list[str] = []
    assert deploy(Api(ship.url, ship.owner), Source(app=app, chunks=[b"tar"]), said.append) == 1
    assert said[-1] == "-----> Build failed: npm ci exited 1"


def test_a_source_over_the_servers_limit_is_its_refusal(server: Server) -> None:
    api = Api(server.env["SHIPWAY_URL"], server.env["SHIPWAY_TOKEN"])
    api.post("/apps", {"name": "big"})
    chunks = (b"\0" * 65536 for _ in range(32))  # 2 MiB against a 1 MiB limit
    with pytest.raises(ClientError) as raised:
        deploy(api, Source(app="big", chunks=chunks), print)
    assert str(raised.value) == "the source is larger than the 1 MiB limit (HTTP 413)"


def test_an_upload_to_no_server_is_one_line() -> None:
    api = Api(f"http://127.0.0.1:{ports.any_free()}", "swt_x")
    with pytest.raises(ClientError, match=r"^cannot upload the source to shipway at http://127"):
        deploy(api, Source(app="web", chunks=[b"tar"]), print)
