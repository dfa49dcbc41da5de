"""How an add-on server process runs: never as root.

When shipway is root, the server runs as SERVER_UID, a uid no user and no sandbox owns, with
no capabilities. It sees its own directory at a fixed path through a private mount namespace,
so the data dir's parents (often /root, mode 0700) need no wider permissions; an /etc/passwd
naming SERVER_UID is mounted there too, since PostgreSQL looks itself up. When shipway is not
root, the server runs as shipway's own user, on the real paths.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from shipway.errors import ServiceError
from shipway.sandbox.identity import BASE_UID

#: The uid and gid of add-on servers when shipway is root: just below the sandboxes' range.
SERVER_UID = BASE_UID - 1
#: Where a confined server sees its own directory.
INSIDE = Path("/mnt")
_USER = "shipway-addons"
#: The tools the confinement needs (util-linux, on every Debian).
_TOOLS = ("unshare", "mount", "setpriv")


def confined() -> bool:
    """Whether servers are confined (shipway is root) rather than run as shipway's user."""
    return os.geteuid() == 0


def inside(home: Path, path: Path) -> Path:
    """Where PATH, a path under HOME (the server's directory), is as the server sees it."""
    return INSIDE / path.relative_to(home) if confined() else path


def prepare(home: Path) -> None:
    """Create HOME for a server, owned (with what it holds at its top) by the uid the server
    runs as, with the passwd it needs."""
    home.mkdir(parents=True, exist_ok=True)
    if not confined():
        home.chmod(0o700)
        return
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        raise ServiceError(
            f"cannot run add-on servers as an unprivileged user: {', '.join(missing)} "
            "not found (install util-linux and mount)"
        )
    (home / "passwd").write_text(
        f"{_USER}:x:{SERVER_UID}:{SERVER_UID}::/nonexistent:/usr/sbin/nologin\n"
        + Path("/etc/passwd").read_text()
    )
    (home / "group").write_text(f"{_USER}:x:{SERVER_UID}:\n" + Path("/etc/group").read_text())
    hand_over(home, *home.iterdir())
    home.chmod(0o700)


def hand_over(*paths: Path) -> None:
    """Make PATHS the server's own (when confined), for files shipway wrote for it."""
    if not confined():
        return
    for path in paths:
        if not path.is_symlink():
            os.chown(path, SERVER_UID, SERVER_UID)


def argv(home: Path, command: list[str]) -> list[str]:
    """COMMAND, run as the server's uid with HOME at INSIDE when confined; the process keeps
    its pid through each exec, so the pid shipway spawns is the server's own."""
    if not confined():
        return command
    script = (
        f'mount --bind "$0" {INSIDE} && '
        f"mount --bind {INSIDE}/passwd /etc/passwd && mount --bind {INSIDE}/group /etc/group && "
        f"exec setpriv --reuid {SERVER_UID} --regid {SERVER_UID} --clear-groups "
        '--inh-caps=-all --bounding-set=-all -- "$@"'
    )
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        str(home),
        *command,
    ]
