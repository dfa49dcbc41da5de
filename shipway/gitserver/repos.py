"""Bare repositories: one per app under DATA/repos/<organization id>/<app>.git."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HOOK = """#!/bin/sh
# Installed by shipway: build and deploy what is pushed before the refs move.
exec "{python}" -m shipway.gitserver.hook
"""


def repo_path(data_dir: Path, organization_id: int, app: str) -> Path:
    return data_dir / "repos" / str(organization_id) / f"{app}.git"


def ensure(path: Path) -> Path:
    """Create the bare repo with shipway's hook if it is not there yet; keep the hook current."""
    if not (path / "HEAD").is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for key, value in (
            ("http.receivepack", "true"),
            ("receive.denyDeletes", "false"),
            ("receive.denyNonFastForwards", "false"),
            ("receive.denyDeleteCurrent", "ignore"),
            ("core.logAllRefUpdates", "true"),
        ):
            subprocess.run(
                ["git", "-C", str(path), "config", key, value],
                check=True,
                capture_output=True,
                timeout=60,
            )
    hook = path / "hooks" / "pre-receive"
    text = HOOK.format(python=sys.executable)
    if not hook.is_file() or hook.read_text() != text:
        hook.parent.mkdir(exist_ok=True)
        hook.write_text(text)
        hook.chmod(0o755)
    return path
