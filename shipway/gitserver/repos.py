"""Each app's bare repository, DATA/repos/<organization id>/<app>.git, made on first use."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

from shipway import native

HOOK = "pre-receive"

#: Holds the identity of the app a repo belongs to (its id and creation time: ids can be
#: reused), so a new app never inherits the history of a deleted one that had the same name.
OWNER_FILE = "shipway-app"

#: Any branch may be pushed, force-pushed or deleted; corrupt objects are refused.
CONFIG = """[http]
\treceivepack = true
[receive]
\tdenyDeletes = false
\tdenyDeleteCurrent = false
\tdenyNonFastForwards = false
\tfsckObjects = true
[core]
\tlogAllRefUpdates = true
"""


def repo_path(data_dir: Path, organization_id: int, app: str) -> Path:
    """Apps are unique per tenant only, so the tenant's id is part of the path."""
    return data_dir / "repos" / str(organization_id) / f"{app}.git"


def identity(app_id: int, created_at: datetime) -> str:
    """What tells an app from a deleted one of the same name: its id and creation time."""
    return f"{app_id}@{created_at.isoformat()}"


#: The hook git runs: a small C program handing the push to the server (see relay.c).
RELAY = Path(__file__).with_name("relay.c")


def hook_script() -> str:
    """The hook: the relay, built from relay.c (NativeError where it cannot be)."""
    return (
        "#!/bin/sh\n"
        "# Installed by shipway: deploy each pushed branch; a failed build rejects the push.\n"
        f"exec {shlex.quote(native.program(RELAY))}\n"
    )


def ensure(data_dir: Path, organization_id: int, app: str, identity: str) -> Path:
    """The app's repo, created bare with its hook on first use; the hook is kept current."""
    path = repo_path(data_dir, organization_id, app)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{app}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        owner = _owner(path)
        if owner is None and (path / "HEAD").is_file():
            _write_owner(path, identity)
        elif owner != identity:
            _retire(path)
            _create(path, identity)
        _install_hook(path)
    return path


def size(path: Path) -> int:
    """Bytes of objects stored in the repo at PATH."""
    total = 0
    for dirpath, _, filenames in os.walk(path / "objects"):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _owner(path: Path) -> str | None:
    try:
        return (path / OWNER_FILE).read_text().strip()
    except OSError:
        return None


def _write_owner(path: Path, identity: str) -> None:
    (path / OWNER_FILE).write_text(identity + "\n")


def _retire(path: Path) -> None:
    """Move a deleted app's repo out of the way (atomically), then remove it."""
    trash = path.with_name(f".deleted-{uuid.uuid4().hex}")
    try:
        path.rename(trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _create(path: Path, identity: str) -> None:
    """Build the repo aside and rename it into place: a crash leaves all of it or none."""
    staging = path.with_name(f".new-{uuid.uuid4().hex}.git")
    subprocess.run(
        ["git", "init", "--quiet", "--bare", "--template=", "--initial-branch=main", staging],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with open(staging / "config", "a") as config:
        config.write(CONFIG)
    (staging / "hooks").mkdir(exist_ok=True)
    _write_owner(staging, identity)
    staging.rename(path)


def _install_hook(path: Path) -> None:
    hook = path / "hooks" / HOOK
    text = hook_script()
    with contextlib.suppress(OSError):
        if hook.read_text() == text:
            return
    hook.parent.mkdir(exist_ok=True)
    staging = hook.with_name(f".{HOOK}-{uuid.uuid4().hex}")
    staging.write_text(text)
    staging.chmod(0o755)
    staging.replace(hook)
