"""Bring a pushed commit from its git host into the app's bare repository, and pack its tree.

Fetched branches land in `refs/remotes/origin/*`, apart from `refs/heads/*`, which pushes to
shipway own. The token reaches git as an `http.extraHeader` in git's environment config, never
in argv or the URL, and git runs without system or global config, credential helpers or
prompts. Fetches are incremental: git tells the host what the repository already holds."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from shipway.errors import ServiceError, ValidationError
from shipway.webhooks.githost import FULL_SHA, check_sha, pull_ref
from shipway.webhooks.verify import Provider

#: The user name each host expects beside a token in HTTP Basic auth.
USERS = {
    Provider.GITHUB: "x-access-token",
    Provider.GITLAB: "oauth2",
    Provider.BITBUCKET: "x-token-auth",
    Provider.GITEA: "oauth2",
}

_MISSING = "the host has no such branch or commit"
_SHORT = re.compile(r"[0-9a-f]{7,39}")

#: What git prints for each way a fetch fails, and how it is told.
_PROBLEMS = (
    (
        ("could not read username", "authentication failed", "error: 401"),
        "the host answered 401: authentication with the token failed",
    ),
    (("error: 403",), "the host answered 403: the token may not read this repository"),
    (
        ("not found", "error: 404"),
        "the host answered 404: no such repository, or the token cannot see it",
    ),
    (("not our ref", "couldn't find remote ref"), _MISSING),
    (
        ("could not resolve host", "failed to connect", "connection refused", "timed out"),
        "the host is not reachable",
    ),
)


class FetchError(ServiceError):
    """Raised when a commit cannot be fetched from its git host; the message says why."""

    code = "fetch_failed"


@dataclass(frozen=True)
class Fetched:
    """The commit now in the repository, and what the fetch added to its object store."""

    sha: str
    objects: int
    #: On disk, to the KiB; about what came over the wire.
    bytes: int

    def __str__(self) -> str:
        if not self.objects:
            return "fetched nothing new"
        return f"fetched {self.objects} objects, {self.bytes / 1024:.0f} KiB"


def fetch(
    repo: Path,
    url: str,
    provider: Provider,
    token: str | None,
    *,
    branch: str | None,
    sha: str,
    pull: int | None = None,
    timeout: float = 300,
) -> Fetched:
    """Fetch BRANCH from URL into the bare REPO (and pull request PULL's head, where the host
    keeps one), then SHA itself if neither holds it (the branch moved on or is gone, or SHA is
    a pull request's from a fork). SHA may be abbreviated (Bitbucket's pull requests say 12
    digits) when BRANCH or PULL holds it; the sha fetched is always the full one."""
    full = len(sha) >= FULL_SHA
    if full:
        check_sha(sha)
    elif not _SHORT.fullmatch(sha):
        raise ValidationError(f"{sha[:80]!r} is not a commit sha")
    git = _Git(repo, provider, token, time.monotonic() + timeout)
    before = git.count()
    wanted = []
    if branch is not None:
        if git.run("check-ref-format", f"refs/heads/{branch}").returncode != 0:
            raise ValidationError(f"{branch!r} is not a branch name")
        wanted.append((f"branch {branch}", f"+refs/heads/{branch}:refs/remotes/origin/{branch}"))
    head = pull_ref(provider, pull) if pull is not None else None
    if head is not None:
        wanted.append((f"pull request #{pull}", f"+{head}:refs/remotes/origin/pull/{pull}"))
    for what, refspec in wanted:
        problem = git.fetch(url, refspec)
        if problem is not None and problem != _MISSING:
            raise FetchError(f"fetching {what} from {url} failed: {problem}")
    found = git.resolve(sha)
    if found is None and full:
        problem = git.fetch(url, sha)
        found = git.resolve(sha)
        if found is None:
            raise FetchError(f"fetching commit {sha[:12]} from {url} failed: {problem or _MISSING}")
    if found is None:
        raise FetchError(f"commit {sha} is not on {' or '.join(w for w, _ in wanted) or url}")
    after = git.count()
    return Fetched(found, after[0] - before[0], after[1] - before[1])


class _Git:
    """git on one bare repository, with the token in its environment and a shared deadline."""

    def __init__(self, repo: Path, provider: Provider, token: str | None, deadline: float) -> None:
        self.repo = repo
        self.deadline = deadline
        self.secrets: list[str] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.pop("SSH_ASKPASS", None)
        env.update(
            GIT_TERMINAL_PROMPT="0",
            GIT_ASKPASS="",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
        )
        # What comes from the host is checked as a push to shipway is.
        config = [("credential.helper", ""), ("fetch.fsckObjects", "true")]
        if token:
            basic = base64.b64encode(f"{USERS[provider]}:{token}".encode()).decode()
            config.append(("http.extraHeader", f"Authorization: Basic {basic}"))
            self.secrets = [token, basic]
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        self.env = env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run git to its end, or stop its whole process group at the deadline."""
        proc = subprocess.Popen(
            ["git", "--git-dir", str(self.repo), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=self.env,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=max(self.deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise FetchError(f"git {args[0]} did not finish in time") from None
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def fetch(self, url: str, refspec: str) -> str | None:
        """Fetch REFSPEC from URL; what went wrong, if anything."""
        done = self.run("fetch", "--no-tags", "--no-write-fetch-head", "--", url, refspec)
        return self.problem(done.stderr) if done.returncode != 0 else None

    def resolve(self, sha: str) -> str | None:
        """The full id of the commit SHA (maybe abbreviated) names, if the repository has it."""
        done = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{sha}^{{commit}}")
        found = done.stdout.strip()
        return found if done.returncode == 0 and found.startswith(sha) else None

    def count(self) -> tuple[int, int]:
        """Objects held, and their bytes on disk."""
        done = self.run("count-objects", "-v")
        if done.returncode != 0:
            raise FetchError(f"git count-objects failed: {self.problem(done.stderr)}")
        fields = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
        number = {k: int(v) for k, v in fields.items() if v.isdigit()}
        objects = number.get("count", 0) + number.get("in-pack", 0)
        return objects, 1024 * (number.get("size", 0) + number.get("size-pack", 0))

    def problem(self, stderr: str) -> str:
        """What went wrong, in a few words, with the token nowhere in it."""
        for signs, told in _PROBLEMS:
            if any(sign in stderr.lower() for sign in signs):
                return told
        lines = [line for line in stderr.splitlines() if line.strip()]
        last = lines[-1].removeprefix("fatal: ") if lines else "git gave no reason"
        for secret in self.secrets:
            last = last.replace(secret, "***")
        return last
