"""git push, clone and fetch with the real git client against the real git route."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import httpx

from shipway.accounts import tokens
from shipway.apps import service as apps
from shipway.gitserver import repos
from tests.gitserver.conftest import Shipway, make_repo, remote_refs
from tests.helpers import GIT_ENV, commit, git

FILES = {"index.html": "<h1>hello</h1>", "static/app.js": "console.log(1)", "bin/run": "#!/bin/sh"}


def push(
    ship: Shipway,
    repo: Path,
    app: str,
    *refspecs: str,
    token: str | None = None,
    force: bool = False,
) -> subprocess.CompletedProcess[str]:
    args = ["push", *(["--force"] if force else []), ship.remote(app, token)]
    return git(repo, *args, *(refspecs or ("main",)), check=False)


def remote_lines(output: str) -> list[str]:
    return [
        line.removeprefix("remote: ").rstrip()
        for line in output.splitlines()
        if line.startswith("remote: ")
    ]


def test_push_deploys_the_commit_and_shows_the_build_log(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("pushed")
    repo = make_repo(tmp_path / "src", FILES)
    sha = git(repo, "rev-parse", "HEAD").stdout.strip()

    result = push(ship, repo, app)

    assert result.returncode == 0, result.stderr
    [upload] = ship.fake.uploads
    assert upload.params == {"source": "git", "ref": "refs/heads/main", "sha": sha}
    assert upload.files() == {name: text.encode() for name, text in FILES.items()}
    assert remote_lines(result.stderr) == [
        f"-----> Received main ({sha[:7]})",
        "-----> Deploying to production of pushed (build 101)",
        "step one",
        "step two",
        "step three",
        "-----> Release v3 is live at http://pushed.localhost:8080",
    ]
    assert ship.fake.polls >= 2, "the deployment is polled until it is live"
    assert remote_refs(ship, app)["refs/heads/main"] == sha


def test_the_log_reaches_the_pusher_while_the_build_runs(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("live-log")
    repo = make_repo(tmp_path / "src", FILES)
    ship.fake.script.hold_after = 1
    proc = subprocess.Popen(
        ["git", "-C", str(repo), "push", ship.remote(app), "main"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **GIT_ENV},
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("remote: step one"):
            # The build is held open until now: this line came while it was running.
            ship.fake.script.go.set()
    proc.wait(timeout=120)
    assert proc.returncode == 0, "".join(seen)
    assert ship.fake.script.released_in_time is True
    assert [line for line in remote_lines("".join(seen)) if line.startswith("step")] == [
        "step one",
        "step two",
        "step three",
    ]


def test_a_failed_build_rejects_the_push(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("failing")
    repo = make_repo(tmp_path / "src", FILES)
    good = git(repo, "rev-parse", "HEAD").stdout.strip()
    assert push(ship, repo, app).returncode == 0
    ship.fake.reset()
    ship.fake.script.lines = [
        "-----> Detecting the stack",
        "-----> Build failed: no recognised stack",
    ]
    ship.fake.script.end = "failed"
    ship.fake.script.status = "failed"
    ship.fake.script.reason = "no recognised stack"
    bad = commit(repo, {"index.html": "broken"})

    result = push(ship, repo, app)

    assert result.returncode != 0
    lines = remote_lines(result.stderr)
    # The log's last line already says why; it is not said twice.
    assert lines[-2:] == ["-----> Detecting the stack", "-----> Build failed: no recognised stack"]
    assert "[remote rejected] main -> main (pre-receive hook declined)" in result.stderr
    assert ship.fake.uploads[0].params["sha"] == bad
    assert remote_refs(ship, app)["refs/heads/main"] == good


def test_a_superseded_build_rejects_the_push(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("overtaken")
    repo = make_repo(tmp_path / "src", FILES)
    ship.fake.script.end = ship.fake.script.status = "superseded"
    ship.fake.script.reason = "a newer push"
    result = push(ship, repo, app)
    assert result.returncode != 0
    assert "remote: -----> Build was superseded: a newer push" in result.stderr
    assert remote_refs(ship, app) == {}


def test_branches_force_pushes_and_deletions(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("branchy")
    repo = make_repo(tmp_path / "src", FILES)
    assert push(ship, repo, app).returncode == 0

    git(repo, "checkout", "-qb", "feature/login")
    first = commit(repo, {"login.html": "<form>"})
    created = push(ship, repo, app, "feature/login")
    assert created.returncode == 0, created.stderr
    assert "Deploying to feature-login of branchy" in created.stderr
    assert ship.fake.uploads[-1].params == {
        "source": "git",
        "ref": "refs/heads/feature/login",
        "sha": first,
    }

    git(repo, "commit", "-q", "--amend", "-m", "rewritten")
    rewritten = git(repo, "rev-parse", "HEAD").stdout.strip()
    refused = push(ship, repo, app, "feature/login")
    assert refused.returncode != 0 and "non-fast-forward" in refused.stderr
    forced = push(ship, repo, app, "feature/login", force=True)
    assert forced.returncode == 0, forced.stderr
    assert ship.fake.uploads[-1].params["sha"] == rewritten
    assert remote_refs(ship, app)["refs/heads/feature/login"] == rewritten

    uploads = len(ship.fake.uploads)
    deleted = push(ship, repo, app, ":feature/login")
    assert deleted.returncode == 0, deleted.stderr
    assert ship.fake.deleted == [(app, "feature-login")]
    assert "remote: -----> Deleted feature/login; removed its preview feature-login" in (
        deleted.stderr
    )
    assert len(ship.fake.uploads) == uploads
    assert "refs/heads/feature/login" not in remote_refs(ship, app)


def test_deleting_a_branch_whose_preview_is_gone_still_works(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("no-preview")
    repo = make_repo(tmp_path / "src", FILES)
    assert push(ship, repo, app, "main", "main:topic").returncode == 0
    ship.fake.script.environment_missing = True
    deleted = push(ship, repo, app, ":topic")
    assert deleted.returncode == 0, deleted.stderr
    assert "its preview topic was not removed: no environment 'topic' (HTTP 404)" in (
        deleted.stderr
    )
    assert list(remote_refs(ship, app)) == ["HEAD", "refs/heads/main"]


def test_tags_are_kept_without_deploying(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("tagged")
    repo = make_repo(tmp_path / "src", FILES)
    git(repo, "tag", "v1")
    result = push(ship, repo, app, "v1")
    assert result.returncode == 0, result.stderr
    assert ship.fake.uploads == []
    assert "Kept refs/tags/v1 without deploying" in result.stderr
    assert "refs/tags/v1" in remote_refs(ship, app)


def test_clone_and_fetch_give_back_what_was_pushed(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("round-trip")
    repo = make_repo(tmp_path / "src", FILES)
    assert push(ship, repo, app).returncode == 0

    clone = tmp_path / "clone"
    cloned = git(tmp_path, "clone", "-q", ship.remote(app, ship.viewer), str(clone), check=False)
    assert cloned.returncode == 0, cloned.stderr
    assert (clone / "static" / "app.js").read_text() == FILES["static/app.js"]

    newer = commit(repo, {"index.html": "<h1>v2</h1>"})
    assert push(ship, repo, app).returncode == 0
    assert git(clone, "pull", "-q", "--ff-only").returncode == 0
    assert git(clone, "rev-parse", "HEAD").stdout.strip() == newer


def test_bad_or_missing_credentials_are_refused(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("guarded")
    repo = make_repo(tmp_path / "src", FILES)

    bad = push(ship, repo, app, token="swt_not-a-real-token")
    assert bad.returncode != 0
    assert "remote: invalid token" in bad.stderr
    assert "Authentication failed" in bad.stderr

    bare = f"{ship.url}/git/{app}.git/info/refs?service=git-receive-pack"
    challenge = httpx.get(bare)
    assert challenge.status_code == 401
    assert challenge.headers["www-authenticate"] == 'Basic realm="shipway"'
    anonymous = git(repo, "push", bare.split("/info/refs")[0], "main", check=False)
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr
    assert ship.fake.uploads == []


def test_a_viewer_can_fetch_but_not_push(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("read-only")
    repo = make_repo(tmp_path / "src", FILES)
    refused = push(ship, repo, app, token=ship.viewer)
    assert refused.returncode != 0
    assert "remote: a viewer token can fetch but not push" in refused.stderr
    assert "403" in refused.stderr
    assert ship.fake.uploads == []
    assert push(ship, repo, app).returncode == 0
    assert "refs/heads/main" in remote_refs(ship, app)


def test_an_unknown_app_is_named_in_the_refusal(ship: Shipway, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "src", FILES)
    result = push(ship, repo, "no-such-app")
    assert result.returncode != 0
    assert (
        "remote: no app named 'no-such-app'; create it with: shipway apps create no-such-app"
        in result.stderr
    )


def test_another_tenant_cannot_reach_the_app(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("private")
    repo = make_repo(tmp_path / "src", FILES)
    assert push(ship, repo, app).returncode == 0
    theirs = commit(repo, {"index.html": "theirs"})

    pushed = push(ship, repo, app, token=ship.other_owner)
    assert pushed.returncode != 0 and "no app named 'private'" in pushed.stderr
    cloned = git(tmp_path, "clone", ship.remote(app, ship.other_owner), "stolen", check=False)
    assert cloned.returncode != 0 and "not found" in cloned.stderr
    info = httpx.get(
        f"{ship.url}/git/{app}.git/info/refs?service=git-upload-pack",
        auth=("x", ship.other_owner),
    )
    assert info.status_code == 404

    # The same name in the other tenant is another app with another repository.
    ship.create_app("private", token=ship.other_owner)
    assert push(ship, repo, app, token=ship.other_owner).returncode == 0
    assert remote_refs(ship, app)["refs/heads/main"] != theirs
    assert ship.repo_dir(app) != ship.repo_dir(app, ship.other_owner)


def test_a_push_over_the_size_limit_is_refused(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("too-big")
    repo = make_repo(tmp_path / "src", {"blob.bin": os.urandom(2 * 1024 * 1024)})
    result = push(ship, repo, app)
    assert result.returncode != 0
    assert "remote: this push is larger than the 1 MiB limit (SHIPWAY_MAX_SOURCE_MB)" in (
        result.stderr
    )
    assert "[remote rejected] main -> main (larger than the 1 MiB limit)" in result.stderr
    assert ship.fake.uploads == []
    assert remote_refs(ship, app) == {}
    assert repos.size(ship.repo_dir(app)) < 1024 * 1024, "the refused pack was not kept"
    small = make_repo(tmp_path / "small", FILES)
    assert push(ship, small, app).returncode == 0


def test_concurrent_first_pushes_share_one_repository(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("racy")
    repos = [make_repo(tmp_path / f"src{n}", {f"file{n}": str(n)}) for n in range(3)]
    results: dict[int, subprocess.CompletedProcess[str]] = {}
    threads = [
        threading.Thread(
            target=lambda n=n: results.update({n: push(ship, repos[n], app, f"main:b{n}")})
        )
        for n in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.returncode == 0 for r in results.values()), [r.stderr for r in results.values()]
    assert {f"refs/heads/b{n}" for n in range(3)} <= set(remote_refs(ship, app))


def test_a_new_app_does_not_inherit_a_deleted_namesakes_history(
    ship: Shipway, tmp_path: Path
) -> None:
    app = ship.create_app("reborn")
    repo = make_repo(tmp_path / "src", FILES)
    assert push(ship, repo, app).returncode == 0
    with ship.store.transaction() as session:
        apps.delete(session, tokens.authenticate(session, ship.owner), app)
    ship.create_app(app)
    assert remote_refs(ship, app) == {}


def test_after_a_failed_branch_the_rest_of_the_push_is_not_deployed(
    ship: Shipway, tmp_path: Path
) -> None:
    app = ship.create_app("two-at-once")
    repo = make_repo(tmp_path / "src", FILES)
    ship.fake.script.end = ship.fake.script.status = "failed"
    result = push(ship, repo, app, "main", "main:other")
    assert result.returncode != 0
    assert len(ship.fake.uploads) == 1
    assert "remote:  !     Not deploying" in result.stderr
    assert remote_refs(ship, app) == {}


def test_a_tree_over_the_limit_is_refused_even_when_its_pack_is_small(
    ship: Shipway, tmp_path: Path
) -> None:
    app = ship.create_app("compressible")
    repo = make_repo(tmp_path / "src", {"zeros.txt": "0" * (3 * 1024 * 1024 // 2)})
    sha = git(repo, "rev-parse", "HEAD").stdout.strip()
    result = push(ship, repo, app)
    assert result.returncode != 0
    assert f"remote:  !     the source of {sha[:7]} is larger than the 1 MiB limit" in (
        result.stderr
    )
    assert ship.fake.uploads == []
    assert remote_refs(ship, app) == {}


def test_a_push_http_backend_refuses_shows_gits_reason(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("closed")
    repo = make_repo(tmp_path / "src", FILES)
    assert push(ship, repo, app).returncode == 0
    head = git(repo, "rev-parse", "HEAD").stdout.strip()
    git(ship.repo_dir(app), "config", "http.receivepack", "false")
    commit(repo, {"more.txt": "more"})

    result = push(ship, repo, app)

    assert result.returncode != 0
    assert "remote: Service not enabled: 'receive-pack'" in result.stderr
    assert "returned error: 403" in result.stderr
    assert remote_refs(ship, app)["refs/heads/main"] == head


def test_a_receive_pack_that_dies_ends_its_answer_cleanly(ship: Shipway, tmp_path: Path) -> None:
    """receive-pack exits non-zero with a message on stderr once the answer has begun: the
    answer still ends properly, and the push changes nothing."""
    app = ship.create_app("garbled")
    repo = make_repo(tmp_path / "src", FILES)
    assert push(ship, repo, app).returncode == 0
    before = remote_refs(ship, app)
    response = httpx.post(
        f"{ship.url}/git/{app}.git/git-receive-pack",
        content=b"zzzz not a pkt-line",
        headers={"Content-Type": "application/x-git-receive-pack-request"},
        auth=("shipway", ship.owner),
        timeout=60,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-git-receive-pack-result"
    assert remote_refs(ship, app) == before
    result = push(ship, make_repo(tmp_path / "again", {"a.txt": "a"}), app, force=True)
    assert result.returncode == 0, result.stderr
