"""Each host's documented (or recorded) example deliveries, byte for byte as fixtures/ keeps
them (where each came from: fixtures/SOURCES.md), signed the way the host signs them, then
verified and parsed: the HookEvents asserted are what the payload itself says (branch, sha,
pull request number)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipway.errors import Unauthorized
from shipway.webhooks.events import HookEvent, Kind, parse
from shipway.webhooks.verify import Delivery, Provider, verify

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "It's a Secret to Everybody"
NOW = 1_795_000_000.0
#: When GitLab signed: half a minute ago.
STAMP = int(NOW) - 30
#: The delivery id in GitHub's documented headers; every host gets one of its own kind.
DELIVERY_ID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
#: GitLab's retry-stable id (Idempotency-Key), which its signed form also sends as webhook-id.
IDEMPOTENCY_KEY = "908a6d9e-45fd-46c8-97e6-c4f350f219dd"


def push(branch: str, sha: str) -> HookEvent:
    return HookEvent(Kind.PUSH, branch=branch, sha=sha)


def deleted(branch: str) -> HookEvent:
    return HookEvent(Kind.BRANCH_DELETED, branch=branch)


def opened(number: int, branch: str, sha: str) -> HookEvent:
    return HookEvent(Kind.PULL_OPENED, branch=branch, sha=sha, number=number)


def closed(number: int, branch: str) -> HookEvent:
    return HookEvent(Kind.PULL_CLOSED, branch=branch, number=number)


@dataclass(frozen=True)
class Case:
    fixture: str
    #: The event header the host sends with this payload.
    event: str
    expected: tuple[HookEvent, ...]

    @property
    def host(self) -> Provider:
        return Provider(self.fixture.split("-", 1)[0])

    @property
    def body(self) -> bytes:
        return (FIXTURES / self.fixture).read_bytes()

    def __str__(self) -> str:
        return self.fixture.removesuffix(".json")


CASES = [
    Case("github-ping.json", "ping", (HookEvent(Kind.PING),)),
    Case("github-push.json", "push",
         (push("master", "6113728f27ae82c7b1a177c8d03f9e96e0adf246"),)),
    Case("github-push-tag-deleted.json", "push",
         (HookEvent(Kind.IGNORED, reason="only pushes to branches are deployed"),)),
    Case("github-pull_request-opened.json", "pull_request",
         (opened(2, "changes", "ec26c3e57ca3a959ca5aad62de7213c562f8c821"),)),
    Case("github-pull_request-closed.json", "pull_request", (closed(2, "changes"),)),
    Case("gitlab-push.json", "Push Hook",
         (push("master", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"),)),
    Case("gitlab-push-branch-deleted.json", "Push Hook", (deleted("feature"),)),
    Case("gitlab-merge_request-open.json", "Merge Request Hook",
         (opened(1, "ms-viewport", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"),)),
    Case("gitlab-merge_request-update.json", "Merge Request Hook",
         (opened(1, "feature", "c4c79227ed610f1151f05bbc5be33b4f340d39c8"),)),
    Case("gitlab-merge_request-merge.json", "Merge Request Hook", (closed(1, "feature"),)),
    Case("bitbucket-repo-push.json", "repo:push",
         (push("name-of-branch", "709d658dc5b6d6afcd46049c2f332ee3f515a67d"),)),
    Case("bitbucket-repo-push-branch-deleted.json", "repo:push", (deleted("master"),)),
    Case("bitbucket-pullrequest-created.json", "pullrequest:created",
         (opened(1, "branch2", "d3022fc0ca3d"),)),
    Case("bitbucket-pullrequest-fulfilled.json", "pullrequest:fulfilled",
         (closed(1, "branch2"),)),
    Case("gitea-push.json", "push",
         (push("develop", "bffeb74224043ba2feb48d137756c8a9331c449a"),)),
    # From a fork: its branch is not the connected repository's, so none is named.
    Case("gitea-pull_request-opened.json", "pull_request",
         (HookEvent(Kind.PULL_OPENED, sha="48e773f892a831faa47c0a160d1b7f0cd369ae2a",
                    number=2),)),
    Case("gitea-delete.json", "delete", (deleted("example3"),)),
]  # fmt: skip
GITLAB = [case for case in CASES if case.host is Provider.GITLAB]
GITEA = [case for case in CASES if case.host is Provider.GITEA]


def hex_mac(body: bytes, digest: str = "sha256") -> str:
    return hmac.new(SECRET.encode(), body, digest).hexdigest()


def gitlab_signature(hook_id: str, stamp: int, body: bytes) -> str:
    message = f"{hook_id}.{stamp}.".encode() + body
    return base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest()).decode()


def sent_headers(case: Case, body: bytes) -> dict[str, str]:
    """The headers CASE's host sends with BODY (names in lower case), its signature made with
    SECRET; GitLab's plain form, whose X-Gitlab-Token is the secret itself."""
    host, event = case.host, case.event
    if host is Provider.GITHUB:
        return {
            "x-github-event": event,
            "x-github-delivery": DELIVERY_ID,
            "x-hub-signature": "sha1=" + hex_mac(body, "sha1"),
            "x-hub-signature-256": "sha256=" + hex_mac(body),
        }
    if host is Provider.GITLAB:
        return {
            "x-gitlab-event": event,
            "x-gitlab-event-uuid": DELIVERY_ID,
            "idempotency-key": IDEMPOTENCY_KEY,
            "x-gitlab-token": SECRET,
        }
    if host is Provider.BITBUCKET:
        return {
            "x-event-key": event,
            "x-request-uuid": DELIVERY_ID,
            "x-attempt-number": "1",
            "x-hub-signature": "sha256=" + hex_mac(body),
        }
    return {
        "x-gitea-event": event,
        "x-gitea-delivery": DELIVERY_ID,
        "x-gitea-signature": hex_mac(body),
    }


def gitlab_signed_headers(case: Case, body: bytes, stamp: int) -> dict[str, str]:
    """GitLab's signed form: the plain headers plus webhook-id/-timestamp/-signature."""
    return {
        **sent_headers(case, body),
        "webhook-id": IDEMPOTENCY_KEY,
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1," + gitlab_signature(IDEMPOTENCY_KEY, stamp, body),
    }


def signed(case: Case, body: bytes) -> dict[str, str]:
    """Headers whose signature covers BODY: for GitLab, only the signed form does."""
    if case.host is Provider.GITLAB:
        return gitlab_signed_headers(case, body, STAMP)
    return sent_headers(case, body)


def flipped(body: bytes, at: int) -> bytes:
    return body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]


def test_every_fixture_is_in_the_table_and_in_sources() -> None:
    on_disk = sorted(path.name for path in FIXTURES.glob("*.json"))
    assert on_disk == sorted(case.fixture for case in CASES)
    sources = (FIXTURES / "SOURCES.md").read_text()
    assert [name for name in on_disk if f"`{name}`" not in sources] == []


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_documented_delivery_verifies_and_asks_for_what_its_payload_says(case: Case) -> None:
    body = case.body
    delivery = verify(case.host, SECRET, sent_headers(case, body), body, NOW)
    assert delivery == Delivery(case.host, DELIVERY_ID, case.event)
    assert parse(case.host, delivery.event, body) == list(case.expected)


@pytest.mark.parametrize("case", GITLAB, ids=str)
def test_gitlabs_signed_form_of_a_documented_delivery_verifies(case: Case) -> None:
    body = case.body
    headers = gitlab_signed_headers(case, body, STAMP)
    delivery = verify(case.host, SECRET, headers, body, NOW)
    assert delivery == Delivery(Provider.GITLAB, DELIVERY_ID, case.event)
    assert parse(case.host, delivery.event, body) == list(case.expected)
    # Without X-Gitlab-Event-UUID the signed form's webhook-id names the delivery.
    del headers["x-gitlab-event-uuid"]
    assert verify(case.host, SECRET, headers, body, NOW).id == IDEMPOTENCY_KEY


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_one_flipped_byte_of_a_signed_body_is_refused(case: Case, where: str) -> None:
    body = case.body
    headers = signed(case, body)
    assert verify(case.host, SECRET, headers, body, NOW).id  # the untouched body passes
    at = {"first": 0, "middle": len(body) // 2, "last": len(body) - 1}[where]
    with pytest.raises(Unauthorized, match="does not match"):
        verify(case.host, SECRET, headers, flipped(body, at), NOW)


@pytest.mark.parametrize("case", GITLAB, ids=str)
def test_gitlabs_token_alone_does_not_cover_the_body(case: Case) -> None:
    # X-Gitlab-Token is the secret itself, whatever the body: only the signed form would
    # notice a changed byte. The same change under the signed form is refused above.
    body = case.body
    headers = sent_headers(case, body)
    assert verify(case.host, SECRET, headers, flipped(body, len(body) // 2), NOW).id
    with pytest.raises(Unauthorized, match="X-Gitlab-Token"):
        verify(case.host, "another secret", headers, body, NOW)


@pytest.mark.parametrize("case", GITEA, ids=str)
def test_forgejos_headers_verify_a_documented_gitea_delivery(case: Case) -> None:
    body = case.body
    headers = {
        "x-forgejo-event": case.event,
        "x-forgejo-delivery": DELIVERY_ID,
        "x-forgejo-signature": hex_mac(body),
    }
    delivery = verify(Provider.GITEA, SECRET, headers, body, NOW)
    assert delivery == Delivery(Provider.GITEA, DELIVERY_ID, case.event)
    assert parse(Provider.GITEA, delivery.event, body) == list(case.expected)
    with pytest.raises(Unauthorized):
        verify(Provider.GITEA, SECRET, headers, flipped(body, 0), NOW)
