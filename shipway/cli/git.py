"""`shipway git-credential`, and what `apps create` and `login` set up in the user's git: a
remote with no token in its URL, and the credential helper that gives git the token."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from shipway.cli.options import DataOpt
from shipway.client import git
from shipway.client.api import Api
from shipway.client.login import data_dir_from

Say = Callable[[str], Any]


def git_credential(
    action: Annotated[str, typer.Argument(help="get, store or erase: git says which")],
    data: DataOpt = None,
) -> None:
    """git's credential helper for shipway's servers (git runs it; `shipway login` and
    `shipway apps create` install it): the token, for the server you are logged in to."""
    git.credential(action, data, sys.stdin.buffer, sys.stdout)


def set_up_remote(api: Api, app: str, name: str, data: Path | None, say: Say) -> None:
    """In a git work tree, a remote NAME for APP, and the helper that gives git the token."""
    here = Path.cwd()
    if not git.in_work_tree(here):
        return
    url = git.remote_url(api.url, app)
    done, had = git.add_remote(here, name, url)
    if done is git.Remote.TAKEN:
        say(
            f"Git remote {name} points at {had} already; left as it is. To push {app}, add "
            f"another: git remote add {app} {url}"
        )
        return
    said = {
        git.Remote.ADDED: f"Added git remote {name} → {url}",
        git.Remote.PRESENT: f"Git remote {name} points at {url} already",
        git.Remote.CLEANED: f"Git remote {name} → {url}, without the token it held",
    }[done]
    # Set up before anything is said: a reader that goes away early (`| head -1`) must not
    # leave git without the token.
    command = git.helper_command(_local_data(data, api.url))
    helper = git.install_helper(api.url, command, replace=False)
    say(f"{said}; deploy with: git push {name} {git.branch(here)}")
    if helper is git.Helper.INSTALLED:
        say(f"git takes the token for {api.url} from shipway (its global credential helper)")


def install_helper(url: str, say: Say) -> None:
    """After `shipway login`: git asks shipway for the token of URL, and only of URL."""
    done = git.install_helper(url, git.helper_command(), replace=True)
    if done is git.Helper.NO_GIT:
        say("git is not installed: no credential helper set up for git push")
    else:
        say(f"git takes the token for {url} from shipway (its global credential helper)")


def _local_data(data: Path | None, url: str) -> Path | None:
    """The data dir to name in the helper: the one whose `shipway up` is the server at URL,
    when the user named it (--data, SHIPWAY_DATA), since git runs the helper without either."""
    if data is None and not os.environ.get("SHIPWAY_DATA"):
        return None
    local = data_dir_from(data)
    state = local.read_state()
    return local.root if state and str(state.get("url", "")).rstrip("/") == url else None
