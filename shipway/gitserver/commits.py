"""What git says of a commit about to be deployed: who wrote it and when it was committed,
read from the app's bare repository (from a push's quarantined objects while its pre-receive
hook runs), for the deployment's record and the delivery metrics."""

from __future__ import annotations

import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from shipway.deploys.service import Commit
from shipway.errors import ValidationError
from shipway.gitserver.archive import objects_env

log = logging.getLogger(__name__)

#: Author name, author email and committer date (strict ISO 8601), NUL-separated.
FORMAT = "%an%x00%ae%x00%cI"
#: The longest author the store keeps.
MAX_AUTHOR = 255


def describe(repo: Path, sha: str, quarantine: str | None = None) -> Commit | None:
    """SHA's author and commit time in the bare REPO, with the objects of the push received
    into QUARANTINE; None when git cannot say, and the deployment goes ahead without them."""
    try:
        env = objects_env(repo, quarantine)
    except ValidationError:
        return None
    shown = subprocess.run(
        [
            "git",
            # No signature check, whatever the user's git config says: only the fields are read.
            "-c",
            "log.showSignature=false",
            "--git-dir",
            str(repo),
            "show",
            "-s",
            "--encoding=UTF-8",
            f"--format={FORMAT}",
            f"{sha}^{{commit}}",
            "--",
        ],
        env=env,
        capture_output=True,
        timeout=30,
    )
    if shown.returncode != 0:
        problem = shown.stderr.decode(errors="replace").strip()
        log.warning("cannot describe commit %s: %s", sha[:12], problem)
        return None
    return parse(shown.stdout.decode(errors="replace"))


def parse(shown: str) -> Commit | None:
    """The Commit in git's output of FORMAT; None if it is not that."""
    fields = shown.rstrip("\n").split("\0")
    if len(fields) != 3:
        return None
    name, email, date = (field.strip() for field in fields)
    author = f"{name} <{email}>" if name and email else (name or email or None)
    try:
        committed_at: datetime | None = datetime.fromisoformat(date).astimezone(UTC)
    except ValueError:
        committed_at = None
    if author is None and committed_at is None:
        return None
    return Commit(author[:MAX_AUTHOR] if author else None, committed_at)
