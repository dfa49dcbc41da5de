"""The pre-receive hook: deploy each pushed branch before its ref moves.

git runs it with the pushed objects still in quarantine and `OLD NEW REF` lines on stdin;
all it prints reaches the pusher as `remote: …` lines, and a non-zero exit rejects the whole
push, so a branch whose build fails stays where it was. The git server passes SHIPWAY_URL,
SHIPWAY_TOKEN (the pusher's) and SHIPWAY_APP through git's environment. The hook sends only
the pushed commit's name: the server archives its tree from the repository itself. With traces
on, the push's span comes as TRACEPARENT, and the hook's spans (and the API calls it makes)
join it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from shipway import tracing
from shipway.client.api import Api
from shipway.client.upload import Pushed, deploy
from shipway.errors import ClientError, ShipwayError

BRANCH_PREFIX = "refs/heads/"


def say(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class RefUpdate:
    old: str
    new: str
    ref: str

    @property
    def branch(self) -> str | None:
        return self.ref.removeprefix(BRANCH_PREFIX) if self.ref.startswith(BRANCH_PREFIX) else None

    @property
    def deleted(self) -> bool:
        return set(self.new) == {"0"}


def read_updates(lines: Iterable[str]) -> list[RefUpdate]:
    updates = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            updates.append(RefUpdate(*parts))
    return updates


def deploy_branch(api: Api, app: str, update: RefUpdate, quarantine: str | None) -> int:
    """Deploy the pushed commit: the server archives its tree from the repository, reading the
    push's objects from QUARANTINE (where git holds them until this hook accepts the push)."""
    branch = update.branch
    assert branch is not None
    say(f"-----> Received {branch} ({update.new[:7]})")
    pushed = Pushed(app=app, ref=update.ref, sha=update.new, quarantine=quarantine)
    with tracing.span("git.deploy_branch", _branch_attributes(app, update)) as span:
        failed = deploy(api, pushed, say)
        if failed:
            tracing.fail(span, "the deployment did not go live")
        return failed


def _branch_attributes(app: str, update: RefUpdate) -> dict[str, str]:
    return {
        "shipway.app": app,
        "vcs.ref.head.name": update.branch or "",
        "vcs.ref.head.revision": update.new,
    }


def remove_preview(api: Api, app: str, branch: str) -> None:
    """A deleted branch takes its preview environment with it; production stays."""
    from shipway.deploys.service import environment_name
    from shipway.errors import ValidationError

    try:
        env, _ = environment_name(BRANCH_PREFIX + branch)
    except ValidationError:
        say(f"-----> Deleted {branch}; it had no preview")
        return
    if env == "production":
        say(f"-----> Deleted {branch}, the production branch; production keeps running")
        return
    try:
        api.delete(f"/apps/{app}/environments/{env}")
    except ClientError as e:
        say(f"-----> Deleted {branch}; its preview {env} was not removed: {e}")
        return
    say(f"-----> Deleted {branch}; removed its preview {env}")


def run(api: Api, app: str, updates: list[RefUpdate], quarantine: str | None) -> int:
    """Deploy the pushed branches one by one, then remove the previews of deleted ones.

    The push is accepted or rejected whole, so after a failure nothing more is deployed."""
    pushed = [u for u in updates if u.branch is not None and not u.deleted]
    for number, update in enumerate(pushed):
        try:
            failed = deploy_branch(api, app, update, quarantine)
        except ShipwayError as e:  # the API's refusal (a source too large, say)
            say(f" !     {e}")
            failed = 1
        if failed:
            for skipped in pushed[number + 1 :]:
                say(f" !     Not deploying {skipped.branch}: the push is rejected")
            return 1
    for update in updates:
        if update.branch is None:
            say(f"-----> Kept {update.ref} without deploying: only branches deploy")
        elif update.deleted:
            remove_preview(api, app, update.branch)
    return 0


def main() -> int:
    try:
        url, token, app = (os.environ[k] for k in ("SHIPWAY_URL", "SHIPWAY_TOKEN", "SHIPWAY_APP"))
    except KeyError as e:
        say(f" !     shipway's hook runs under shipway's git server only ({e.args[0]} is unset)")
        return 1
    quarantine = os.environ.get("GIT_QUARANTINE_PATH")
    tracing.setup("git-hook")
    with tracing.span("git.pre_receive", {"shipway.app": app}, parent=tracing.from_environment()):
        return run(
            Api(url, token), app, read_updates(sys.stdin), quarantine and Path(quarantine).name
        )


if __name__ == "__main__":
    sys.exit(main())
