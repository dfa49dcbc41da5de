"""How a push or an upload ends, in the words the pusher reads, and its exit code."""

from __future__ import annotations

from typing import Any

import pytest

from shipway.client.upload import outcome

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
