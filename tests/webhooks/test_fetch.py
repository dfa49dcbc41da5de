"""Fetching pushed commits with the real git from the stand-in host: incrementally, by branch or
by sha, with failures told by cause and the token kept out of them; then packing the tree."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipway.errors import ServiceError, TooLarge, ValidationError
from shipway.gitserver.archive import write as archive
from shipway.webhooks.fetch import FetchError, fetch
from shipway.webhooks.githost import clone_url
from shipway.webhooks.verify import Provider
from tests.githost import StandInHost
from tests.helpers import commit, git

REPO = "acme/web"


@pytest.fixture
def host(tmp_path: Path) -> Iterator[StandInHost]:
    with StandInHost(tmp_path / "host") as host:
        yield host


@pytest.fixture
def origin(host: StandInHost, tmp_path: Path) -> Path:
    """A working clone whose pushes land in the host's acme/web."""
    bare = host.add_repo(REPO)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "remote", "add", "host", str(bare))
    return work


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The app's bare repository on shipway's side."""
    path = tmp_path / "app.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return path


def url_of(host: StandInHost, provider: Provider = Provider.GITHUB, repo: str = REPO) -> str:
    return clone_url(provider, host.api_url(provider), repo)


def push(origin: Path, files: dict[str, str | bytes], ref: str = "main") -> str:
    sha = commit(origin, files)
    git(origin, "push", "-q", "host", f"HEAD:refs/heads/{ref}" if "/" not in ref else f"HEAD:{ref}")
    return sha


def ref(repo: Path, name: str) -> str:
    return git(repo, "rev-parse", "--verify", "-q", name, check=False).stdout.strip()


@pytest.mark.parametrize("provider", list(Provider))
def test_a_second_fetch_brings_only_what_is_new(
    host: StandInHost, origin: Path, repo: Path, provider: Provider
) -> None:
    first = push(origin, {"app.py": "print('hi')", "data.bin": os.urandom(200_000)})
    fetched = fetch(repo, url_of(host, provider), provider, host.token, branch="main", sha=first)
    assert fetched.sha == first and fetched.objects >= 3 and fetched.bytes > 100_000
    assert ref(repo, "refs/remotes/origin/main") == first
    assert git(repo, "for-each-ref", "refs/heads", "refs/tags").stdout == ""
    first_bytes = sum(host.pack_bytes)

    seen = len(host.pack_bytes)
    second = push(origin, {"app.py": "print('hello')"})
    fetched = fetch(repo, url_of(host, provider), provider, host.token, branch="main", sha=second)
    assert fetched.sha == second and 0 < fetched.objects < 10
    assert ref(repo, "refs/remotes/origin/main") == second
    second_bytes = sum(host.pack_bytes[seen:])
    assert second_bytes * 50 < first_bytes


def test_a_commit_the_branch_moved_on_from_is_still_there(
    host: StandInHost, origin: Path, repo: Path
) -> None:
    older = push(origin, {"a": "1"})
    newer = push(origin, {"a": "2"})
    fetch(repo, url_of(host), Provider.GITHUB, host.token, branch="main", sha=older)
    assert ref(repo, "refs/remotes/origin/main") == newer
    assert ref(repo, f"{older}^{{commit}}") == older


def test_a_pull_request_commit_is_fetched_by_its_sha(
    host: StandInHost, origin: Path, repo: Path
) -> None:
    push(origin, {"a": "1"})
    forked = push(origin, {"a": "from a fork"}, ref="refs/pull/7/head")
    fetched = fetch(repo, url_of(host), Provider.GITHUB, host.token, branch=None, sha=forked)
    assert fetched.sha == forked and ref(repo, f"{forked}^{{commit}}") == forked
    assert git(repo, "for-each-ref").stdout == ""


@pytest.mark.parametrize(
    ("provider", "head"),
    [(Provider.GITHUB, "refs/pull/7/head"), (Provider.GITLAB, "refs/merge-requests/7/head")],
)
def test_a_pull_request_is_fetched_by_the_ref_its_host_keeps(
    host: StandInHost, origin: Path, repo: Path, provider: Provider, head: str
) -> None:
    push(origin, {"a": "1"})
    forked = push(origin, {"a": "from a fork"}, ref=head)
    url = url_of(host, provider)
    fetched = fetch(repo, url, provider, host.token, branch=None, sha=forked, pull=7)
    assert fetched.sha == forked and ref(repo, "refs/remotes/origin/pull/7") == forked


def test_an_abbreviated_sha_is_resolved_on_the_branch_that_holds_it(
    host: StandInHost, origin: Path, repo: Path
) -> None:
    # Bitbucket's pull request deliveries name the head commit with 12 digits.
    sha = push(origin, {"a": "1"}, ref="branch2")
    url = url_of(host, Provider.BITBUCKET)
    fetched = fetch(repo, url, Provider.BITBUCKET, host.token, branch="branch2", sha=sha[:12])
    assert fetched.sha == sha
    with pytest.raises(FetchError, match="is not on branch branch2"):
        fetch(repo, url, Provider.BITBUCKET, host.token, branch="branch2", sha="abcdef123456")


def test_a_deleted_branch_falls_back_to_the_sha(
    host: StandInHost, origin: Path, repo: Path
) -> None:
    sha = push(origin, {"a": "1"}, ref="topic")
    git(origin, "push", "-q", "host", ":refs/heads/topic")
    git(origin, "push", "-q", "host", "HEAD:refs/heads/main")
    fetch(repo, url_of(host), Provider.GITHUB, host.token, branch="topic", sha=sha)
    assert ref(repo, f"{sha}^{{commit}}") == sha


def test_a_wrong_token_is_a_401_and_stays_out_of_the_message(
    host: StandInHost, origin: Path, repo: Path
) -> None:
    sha = push(origin, {"a": "1"})
    wrong = "ghp_wrong-token-that-must-not-show"
    with pytest.raises(FetchError, match="401") as failed:
        fetch(repo, url_of(host), Provider.GITHUB, wrong, branch="main", sha=sha)
    assert "authentication" in failed.value.message
    assert wrong not in failed.value.message
    assert wrong not in (repo / "config").read_text()
    with pytest.raises(FetchError, match="401"):
        fetch(repo, url_of(host), Provider.GITHUB, None, branch="main", sha=sha)


def test_a_token_sent_as_another_hosts_user_is_refused(
    host: StandInHost, origin: Path, repo: Path
) -> None:
    """Each host's user goes with its token: GitLab's oauth2 is not Bitbucket's."""
    sha = push(origin, {"a": "1"})
    with pytest.raises(FetchError, match="401"):
        fetch(
            repo,
            url_of(host, Provider.BITBUCKET),
            Provider.GITLAB,
            host.token,
            branch="main",
            sha=sha,
        )


def test_an_unknown_commit_is_not_found(host: StandInHost, origin: Path, repo: Path) -> None:
    push(origin, {"a": "1"})
    with pytest.raises(FetchError, match=f"commit {'1' * 12} .* no such branch or commit"):
        fetch(repo, url_of(host), Provider.GITHUB, host.token, branch="main", sha="1" * 40)


def test_an_unknown_repository_is_a_404(host: StandInHost, repo: Path) -> None:
    url = url_of(host, repo="acme/missing")
    with pytest.raises(FetchError, match="404"):
        fetch(repo, url, Provider.GITHUB, host.token, branch="main", sha="1" * 40)


def test_a_host_that_does_not_answer_is_not_reachable(repo: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}/acme/web.git"
    with pytest.raises(FetchError, match="not reachable"):
        fetch(repo, url, Provider.GITEA, "a-token", branch="main", sha="1" * 40)


@pytest.mark.parametrize(
    ("branch", "sha"), [("a..b", "1" * 40), ("x:y", "1" * 40), ("main", "HEAD")]
)
def test_bad_branches_and_shas_are_refused_before_git_runs(
    host: StandInHost, repo: Path, branch: str, sha: str
) -> None:
    with pytest.raises(ValidationError):
        fetch(repo, url_of(host), Provider.GITHUB, host.token, branch=branch, sha=sha)
    assert host.pack_bytes == []


def test_the_archive_holds_the_commits_tree(
    host: StandInHost, origin: Path, repo: Path, tmp_path: Path
) -> None:
    sha = push(origin, {"app.py": "print('hi')", "sub/conf.toml": "x = 1"})
    push(origin, {"app.py": "changed later"})
    fetch(repo, url_of(host), Provider.GITHUB, host.token, branch="main", sha=sha)
    dest = archive(repo, sha, tmp_path / "source.tar", limit=1024 * 1024)
    with tarfile.open(fileobj=io.BytesIO(dest.read_bytes())) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert files == {"app.py": b"print('hi')", "sub/conf.toml": b"x = 1"}


def test_an_archive_past_the_limit_is_too_large_and_left_nowhere(
    host: StandInHost, origin: Path, repo: Path, tmp_path: Path
) -> None:
    sha = push(origin, {"big.bin": os.urandom(300_000)})
    fetch(repo, url_of(host), Provider.GITHUB, host.token, branch="main", sha=sha)
    dest = tmp_path / "source.tar"
    with pytest.raises(TooLarge, match=f"the source of {sha[:7]} is larger than the 0.25 MiB"):
        archive(repo, sha, dest, limit=256 * 1024)
    assert not dest.exists()


def test_archiving_a_missing_commit_fails_and_leaves_nothing(repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "source.tar"
    with pytest.raises(ServiceError, match="git archive 1111111 failed"):
        archive(repo, "1" * 40, dest, limit=1024)
    assert not dest.exists()
