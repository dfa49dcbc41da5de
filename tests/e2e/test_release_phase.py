"""The release phase as a user meets it: a real `shipway up`, real `git push`es of an app whose
Procfile has a `release:` line, the app's log, a failing release phase and a rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Instance
from tests.e2e.test_live import FILES, serving
from tests.e2e.test_push import make_repo, push, wait_for
from tests.helpers import commit

pytestmark = pytest.mark.e2e

APP = "migrates"
HOST = f"{APP}.localhost"
PROCFILE = "release: echo migrating $MARKER as $SHIPWAY_PROCESS\nweb: python3 server.py\n"


def app_log(instance: Instance) -> list[str]:
    result = instance.cli("logs", "--app", APP, "--tail", "1000")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def logged(instance: Instance, text: str) -> list[str]:
    """The app's log once a line of it contains TEXT."""
    found: list[str] = wait_for(
        lambda: (log := app_log(instance)) and any(text in line for line in log) and log,
        60,
        f"{text!r} in the app's log",
    )
    return found


def migrations(log: list[str]) -> list[str]:
    return [line for line in log if "release: migrating" in line]


def test_the_release_phase_runs_before_each_release_and_not_on_rollback(
    instance: Instance, tmp_path: Path
) -> None:
    assert instance.cli("apps", "create", APP).returncode == 0
    assert instance.cli("env", "set", "--app", APP, "MARKER=m1").returncode == 0
    repo = make_repo(tmp_path / APP, {**FILES, "Procfile": PROCFILE})
    first = push(instance, repo, APP)
    assert first.returncode == 0, first.stderr
    assert f"is live at http://{HOST}:{instance.port}" in first.stderr
    log = logged(instance, "release: migrating m1 as release")
    assert any("[shipway] Running release phase of v1: echo migrating" in line for line in log)

    commit(repo, {"VERSION": "two\n"})
    second = push(instance, repo, APP)
    assert second.returncode == 0, second.stderr
    assert serving(instance, HOST)["version"] == "two"  # type: ignore[index]
    assert len(migrations(logged(instance, "Release phase of v2 done"))) == 2

    # A release phase that fails: the push fails with its output, and v2 keeps serving.
    failing = "release: echo cannot migrate: no database; exit 1\nweb: python3 server.py\n"
    commit(repo, {"VERSION": "three\n", "Procfile": failing})
    third = push(instance, repo, APP)
    assert third.returncode != 0, third.stderr
    assert "release phase failed (exited with code 1); its last output:" in third.stderr
    assert "cannot migrate: no database" in third.stderr
    assert serving(instance, HOST)["version"] == "two"  # type: ignore[index]

    # A rollback (to v1, the release live before v2) runs no release phase.
    rolled = instance.cli("rollback", "--app", APP)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert serving(instance, HOST) == {"version": "one", "release": "v4", "greeting": None}
    log = logged(instance, "[shipway] v4 healthy")
    assert len(migrations(log)) == 2
    assert not any("release phase of v4" in line for line in log)
    assert not any("[shipway] Starting v3" in line for line in log), "v3 never started"
