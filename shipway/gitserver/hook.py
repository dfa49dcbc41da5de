"""The pre-receive hook's work: deploy each pushed branch before its ref moves.

git runs the hook (relay.c) with the pushed objects still in quarantine and
`OLD NEW REF` lines on stdin; the hook hands them to this server over the push's `Channel`,
and a thread here deploys the branches as the pusher, calling the API back. All it says
reaches the pusher as `remote: …` lines, and a non-zero exit code rejects the whole push, so
a branch whose build fails stays where it was. It sends only the pushed commit's name: the
server archives its tree from the repository itself. With traces on, the hook's spans (and
the API calls it makes) join the push's.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shipway import tracing
from shipway.client.api import Api
from shipway.client.upload import Pushed, deploy
from shipway.errors import ClientError, ShipwayError

log = logging.getLogger(__name__)

BRANCH_PREFIX = "refs/heads/"
#: The variable that gives the hook its end of the push's channel.
FD_VARIABLE = "SHIPWAY_HOOK_FD"
#: The most a hook may send: its ref lines (a push of thousands of refs stays well below).
MAX_REQUEST = 16 * 1024 * 1024

Say = Callable[[str], None]


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


def deploy_branch(api: Api, app: str, update: RefUpdate, quarantine: str | None, say: Say) -> int:
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


def remove_preview(api: Api, app: str, branch: str, say: Say) -> None:
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


def run(api: Api, app: str, updates: list[RefUpdate], quarantine: str | None, say: Say) -> int:
    """Deploy the pushed branches one by one, then remove the previews of deleted ones.

    The push is accepted or rejected whole, so after a failure nothing more is deployed."""
    pushed = [u for u in updates if u.branch is not None and not u.deleted]
    for number, update in enumerate(pushed):
        try:
            failed = deploy_branch(api, app, update, quarantine, say)
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
            remove_preview(api, app, update.branch, say)
    return 0


class Channel:
    """One push's line to its pre-receive hook: a socket pair, one end passed down to git
    (which passes it on to the hook), the other served by a thread of this process that does
    the hook's work as the pusher (API, their token) for APP. Nothing but git's processes for
    this push holds the hook's end: no address, no key."""

    def __init__(self, api: Api, app: str) -> None:
        ours, self._theirs = socket.socketpair()
        # The push's trace context, for the thread's spans to join.
        context = contextvars.copy_context()
        self.thread = threading.Thread(
            target=context.run, args=(_serve, ours, api, app), name=f"hook {app}", daemon=True
        )
        self.thread.start()

    @property
    def env(self) -> dict[str, str]:
        return {FD_VARIABLE: str(self._theirs.fileno())}

    @property
    def fds(self) -> tuple[int, ...]:
        """What git must inherit."""
        return (self._theirs.fileno(),)

    def close(self) -> None:
        """Drop this process's copy of the hook's end, once git has its own (or will not run):
        when git ends without running the hook, the thread then reads the end and stops."""
        self._theirs.close()


def _serve(channel: socket.socket, api: Api, app: str) -> None:
    with channel:
        request = _request(channel)
        if request is None:
            return  # git ended without running the hook: a refused or fetched-only request

        def say(line: str) -> None:
            for part in line.split("\n"):  # the hook reads a line at a time
                channel.sendall(b"say " + part.encode(errors="replace") + b"\n")

        try:
            code = _work(api, app, request, say)
            channel.sendall(b"exit %d\n" % code)
        except OSError as e:  # the hook went away: the pusher gave up, or git was stopped
            log.info("the pre-receive hook of a push to %s went away: %s", app, e)


@dataclass(frozen=True)
class HookRequest:
    """What the hook sends (see relay.c): the push's quarantine directory, and git's lines."""

    quarantine: str | None
    updates: list[str]


def _request(channel: socket.socket) -> HookRequest | None:
    """The hook's request; None when git ended without running the hook (or sent nonsense)."""
    received = b""
    while b"\n" not in received:
        chunk = channel.recv(65536)
        if not chunk or len(received) > 20:
            return None
        received += chunk
    head, _, body = received.partition(b"\n")
    length = int(head) if head.isdigit() else MAX_REQUEST + 1
    if length > MAX_REQUEST:
        return None
    while len(body) < length:
        chunk = channel.recv(65536)
        if not chunk:
            return None
        body += chunk
    quarantine, _, updates = body[:length].partition(b"\n")
    return HookRequest(
        quarantine.decode(errors="replace") or None,
        updates.decode(errors="replace").splitlines(),
    )


def _work(api: Api, app: str, request: HookRequest, say: Say) -> int:
    where = os.path.basename(request.quarantine) if request.quarantine else None
    with tracing.span("git.pre_receive", {"shipway.app": app}):
        try:
            return run(api, app, read_updates(request.updates), where, say)
        except OSError:
            raise
        except Exception:
            log.exception("deploying a push to %s failed", app)
            say(" !     shipway failed while deploying this push; its log says why")
            return 1
