"""The pre-receive hook: build and deploy each pushed branch before its ref moves.

git runs it with the pushed objects in quarantine and the updates on stdin
(`OLD NEW REF` per line). Whatever it prints reaches the pusher as `remote: …` lines; a
non-zero exit rejects the push, so a failed build leaves the branch where it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

from shipway.cli.client import Api, CliError
from shipway.cli.upload import deploy_archive

ZERO = "0" * 40


def say(line: str) -> None:
    print(line, flush=True)


def archive(sha: str) -> Iterator[bytes]:
    """The tree of SHA as a tar stream, read from the quarantined objects."""
    proc = subprocess.Popen(["git", "archive", "--format=tar", sha], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    while chunk := proc.stdout.read(65536):
        yield chunk
    if proc.wait() != 0:
        raise CliError(f"git archive {sha} failed")


def update(api: Api, app: str, old: str, new: str, ref: str) -> bool:
    if not ref.startswith("refs/heads/"):
        return True
    branch = ref.removeprefix("refs/heads/")
    if set(new) == {"0"}:
        return delete_preview(api, app, branch)
    return deploy_archive(api, app, archive(new), out=say, ref=ref, sha=new, source="git")


def delete_preview(api: Api, app: str, branch: str) -> bool:
    from shipway.deploys.service import environment_name

    env, _ = environment_name(f"refs/heads/{branch}")
    if env == "production":
        say("-----> The production branch was deleted; production keeps running")
        return True
    try:
        api.delete(f"/apps/{app}/environments/{env}")
    except CliError as e:
        say(f"-----> Branch {branch} deleted; its preview could not be removed: {e}")
        return True
    say(f"-----> Branch {branch} deleted; preview {env} removed")
    return True


def main() -> int:
    api = Api(os.environ["SHIPWAY_URL"], os.environ["SHIPWAY_TOKEN"], timeout=60)
    app = os.environ["SHIPWAY_APP"]
    ok = True
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 3:
            continue
        try:
            ok = update(api, app, *parts) and ok
        except CliError as e:
            say(f"-----> {e}")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
