"""The pre-receive hook: deploy each pushed branch before its ref moves.

git runs it with the pushed objects still in quarantine and `OLD NEW REF` lines on stdin;
all it prints reaches the pusher as `remote: …` lines, and a non-zero exit rejects the whole
push, so a branch whose build fails stays where it was. The git server passes SHIPWAY_URL,
SHIPWAY_TOKEN (the pusher's), SHIPWAY_APP and SHIPWAY_MAX_SOURCE through git's environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from shipway.client.api import Api
from shipway.client.upload import Source, deploy
from shipway.errors import ClientError, ShipwayError
from shipway.gitserver.archive import stream

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


def deploy_branch(api: Api, app: str, update: RefUpdate, limit: int | None) -> int:
    branch = update.branch
    assert branch is not None
    say(f"-----> Received {branch} ({update.new[:7]})")
    source = Source(
        app=app, chunks=stream(update.new, limit), origin="git", ref=update.ref, sha=update.new
    )
    return deploy(api, source, say)


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


def run(api: Api, app: str, updates: list[RefUpdate], limit: int | None) -> int:
    """Deploy the pushed branches one by one, then remove the previews of deleted ones.

    The push is accepted or rejected whole, so after a failure nothing more is deployed."""
    pushed = [u for u in updates if u.branch is not None and not u.deleted]
    for number, update in enumerate(pushed):
        try:
            failed = deploy_branch(api, app, update, limit)
        except ShipwayError as e:  # the API's refusal, or a source too large to send
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
    raw_limit = os.environ.get("SHIPWAY_MAX_SOURCE", "")
    limit = int(raw_limit) if raw_limit.isdigit() else None
    return run(Api(url, token), app, read_updates(sys.stdin), limit)


if __name__ == "__main__":
    sys.exit(main())
