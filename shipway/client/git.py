"""The user's own git, set up for shipway: a work tree's remote for an app, with no token in
its URL, and the credential helper that hands git the token when it pushes there.

The helper speaks git's credential protocol (git-credential(1)): git runs
`shipway git-credential get|store|erase`, writes `key=value` lines and a blank line, and for
`get` reads back `username=` and `password=`. It is installed for the server's URL only
(`credential.URL.helper`), after an empty value that clears the helpers configured before
it, so no other helper (`store`, a keychain) is asked to keep the token."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import BinaryIO, TextIO
from urllib.parse import urlsplit, urlunsplit

from shipway.client import login
from shipway.errors import ClientError

#: The user name the helper answers with; the server reads only the password, the token.
USERNAME = "shipway"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Remote(Enum):
    """What became of the remote `apps create` adds."""

    ADDED = "added"
    PRESENT = "present"  # already there, with this URL
    CLEANED = "cleaned"  # there with this URL and a token in it, which is now gone
    TAKEN = "taken"  # the name points elsewhere: left as it is


class Helper(Enum):
    """What became of the credential helper for a server's URL."""

    INSTALLED = "installed"
    PRESENT = "present"  # this one was already installed
    KEPT = "kept"  # another helper serves the URL, and was not to be replaced
    NO_GIT = "no git"


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str] | None:
    """git ARGS, never prompting; None when git is not installed."""
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            timeout=60,
            check=False,
        )
    except FileNotFoundError:
        return None


def remote_url(server: str, app: str) -> str:
    """Where git pushes APP on SERVER: its smart HTTP repository, no credentials in it."""
    return f"{server.rstrip('/')}/git/{app}.git"


def in_work_tree(cwd: Path) -> bool:
    done = _git("rev-parse", "--is-inside-work-tree", cwd=cwd)
    return done is not None and done.returncode == 0 and done.stdout.strip() == "true"


def add_remote(cwd: Path, name: str, url: str) -> tuple[Remote, str | None]:
    """Give the work tree at CWD a remote NAME for URL, unless NAME already points elsewhere;
    what happened, and the URL it had before."""
    before = _git("remote", "get-url", name, cwd=cwd)
    had = before.stdout.strip() if before is not None and before.returncode == 0 else None
    if had is None:
        _check(_git("remote", "add", name, url, cwd=cwd), f"git remote add {name}")
        return Remote.ADDED, None
    if had == url:
        return Remote.PRESENT, had
    if without_credentials(had) == url:
        _check(_git("remote", "set-url", name, url, cwd=cwd), f"git remote set-url {name}")
        return Remote.CLEANED, had
    return Remote.TAKEN, had


def branch(cwd: Path) -> str:
    """The branch whose push deploys production: `master` in a work tree on it, else `main`."""
    done = _git("branch", "--show-current", cwd=cwd)
    return "master" if done is not None and done.stdout.strip() == "master" else "main"


def without_credentials(url: str) -> str:
    """URL with no user name or password in it."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def helper_command(data: Path | None = None) -> str:
    """The helper as git's config names it: a shell snippet (`!…`), so a path with spaces
    survives, running this very shipway; with DATA when the server is a `shipway up` of a
    data dir that is not the default one."""
    program = sys.argv[0]
    if Path(program).name == "shipway" and os.access(program, os.X_OK):
        argv = [os.path.abspath(program)]
    else:  # `python -m shipway`
        argv = [sys.executable, "-m", "shipway"]
    argv.append("git-credential")
    if data is not None:
        argv += ["--data", str(data)]
    return "!" + shlex.join(argv)


def install_helper(server: str, command: str, *, replace: bool) -> Helper:
    """Make COMMAND git's credential helper for SERVER's URL, in the user's global git config
    (which HOME and GIT_CONFIG_GLOBAL locate); REPLACE says whether a helper the user set for
    that URL gives way."""
    key = f"credential.{server.rstrip('/')}.helper"
    present = _git("config", "--get-all", key)
    if present is None:
        return Helper.NO_GIT
    helpers = present.stdout.splitlines() if present.returncode == 0 else []
    if command in helpers:
        return Helper.PRESENT
    if any(helpers) and not replace:
        return Helper.KEPT
    _git("config", "--global", "--unset-all", key)  # none there (exit code 5) is fine
    _check(_git("config", "--global", "--add", key, ""), "git config --global")
    _check(_git("config", "--global", "--add", key, command), "git config --global")
    return Helper.INSTALLED


def _check(done: subprocess.CompletedProcess[str] | None, what: str) -> None:
    if done is None:
        raise ClientError(f"{what}: git is not installed")
    if done.returncode != 0:
        raise ClientError(f"{what} failed: {done.stderr.strip() or done.returncode}")


def credential(action: str, data: Path | None, stdin: BinaryIO, stdout: TextIO) -> None:
    """`shipway git-credential ACTION`: for `get`, the token of the server git asks about (of
    the local shipway of DATA, or any other this user reaches); `store` and `erase` do nothing,
    since the token stays where shipway keeps it."""
    if action == "get":
        stdout.write(answer(read_request(stdin), login.known(data)))


def read_request(stream: BinaryIO) -> dict[str, str]:
    """The attributes git writes to a helper: `key=value` lines up to a blank line or the end;
    a line that is not `key=value` is skipped."""
    request: dict[str, str] = {}
    for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            break
        key, sep, value = line.partition("=")
        if sep and key:
            request[key] = value
    return request


def answer(request: dict[str, str], servers: Iterable[tuple[str, str]]) -> str:
    """The helper's answer to `get` for REQUEST: the token of the first of SERVERS (URL, token)
    git asks about, or nothing, so that git asks its other helpers."""
    asked = _origin(request.get("url") or f"{request.get('protocol')}://{request.get('host')}/")
    if asked is None:
        return ""
    for url, token in servers:
        if _origin(url) == asked and not _unsafe(token):
            return f"username={USERNAME}\npassword={token}\n"
    return ""


def _origin(url: str) -> tuple[str, str, int] | None:
    """URL's scheme, host and port (the default one when it names none); None unless http(s)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def _unsafe(value: str) -> bool:
    """Whether VALUE would break the protocol's lines."""
    return any(c in value for c in "\n\r\0")
