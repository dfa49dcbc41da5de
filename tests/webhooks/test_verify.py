"""Verifying deliveries the way each git host signs them, with real HMACs; anything else is
refused with a reason, and every parse error is a defined one."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipway.errors import Unauthorized, ValidationError
from shipway.webhooks.events import BadPayload, Kind, parse
from shipway.webhooks.verify import TOLERANCE, Provider, provider, verify

SECRET = "It's a Secret to Everybody"
BODY = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
NOW = 1_795_000_000.0


def hex_mac(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_github_checks_the_sha256_signature_of_the_raw_body() -> None:
    headers = {
        "x-hub-signature-256": "sha256=" + hex_mac(BODY),
        "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "x-github-event": "ping",
    }
    delivery = verify(Provider.GITHUB, SECRET, headers, BODY, NOW)
    assert (delivery.id, delivery.event) == ("72d3162e-cc78-11e3-81ab-4c9367dc0958", "ping")
    with pytest.raises(Unauthorized, match="does not match"):
        verify(Provider.GITHUB, SECRET, headers, BODY + b" ", NOW)
    with pytest.raises(Unauthorized, match="does not match"):
        verify(Provider.GITHUB, "another secret", headers, BODY, NOW)
    with pytest.raises(Unauthorized, match="missing"):
        verify(Provider.GITHUB, SECRET, {"x-github-delivery": "1"}, BODY, NOW)


def test_the_signature_documented_by_github_verifies() -> None:
    # GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!"
    expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert hex_mac(b"Hello, World!") == expected
    headers = {"x-hub-signature-256": f"sha256={expected}", "x-github-delivery": "d"}
    assert verify(Provider.GITHUB, SECRET, headers, b"Hello, World!", NOW).id == "d"


def test_bitbucket_and_gitea_sign_the_body_in_hex() -> None:
    bitbucket = {
        "x-hub-signature": "sha256=" + hex_mac(BODY),
        "x-request-uuid": "bb-1",
        "x-event-key": "repo:push",
    }
    assert verify(Provider.BITBUCKET, SECRET, bitbucket, BODY, NOW).event == "repo:push"
    for name in ("gitea", "forgejo"):
        headers = {
            f"x-{name}-signature": hex_mac(BODY),
            f"x-{name}-delivery": f"{name}-1",
            f"x-{name}-event": "push",
        }
        assert verify(Provider.GITEA, SECRET, headers, BODY, NOW).id == f"{name}-1"
        headers[f"x-{name}-signature"] = hex_mac(BODY, "wrong")
        with pytest.raises(Unauthorized):
            verify(Provider.GITEA, SECRET, headers, BODY, NOW)


def gitlab_signed(stamp: float, hook_id: str = "msg_1", secret: str = SECRET) -> dict[str, str]:
    message = f"{hook_id}.{int(stamp)}.".encode() + BODY
    mac = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return {
        "x-gitlab-token": SECRET,
        "x-gitlab-event": "Push Hook",
        "webhook-id": hook_id,
        "webhook-timestamp": str(int(stamp)),
        "webhook-signature": f"v1,{mac}",
    }


def test_gitlab_checks_its_token_and_the_signed_form_within_five_minutes() -> None:
    plain = {"x-gitlab-token": SECRET, "x-gitlab-event-uuid": "uuid-1", "x-gitlab-event": "x"}
    assert verify(Provider.GITLAB, SECRET, plain, BODY, NOW).id == "uuid-1"
    with pytest.raises(Unauthorized, match="X-Gitlab-Token"):
        verify(Provider.GITLAB, SECRET, {**plain, "x-gitlab-token": "guess"}, BODY, NOW)
    assert verify(Provider.GITLAB, SECRET, gitlab_signed(NOW - 60), BODY, NOW).id == "msg_1"
    with pytest.raises(Unauthorized, match="5 minutes"):
        verify(Provider.GITLAB, SECRET, gitlab_signed(NOW - TOLERANCE - 1), BODY, NOW)
    forged = gitlab_signed(NOW, secret="not it")
    with pytest.raises(Unauthorized, match="webhook-signature"):
        verify(Provider.GITLAB, SECRET, forged, BODY, NOW)


def test_a_delivery_without_an_id_or_an_unknown_host_is_named() -> None:
    headers = {"x-hub-signature-256": "sha256=" + hex_mac(BODY)}
    with pytest.raises(ValidationError, match="x-github-delivery"):
        verify(Provider.GITHUB, SECRET, headers, BODY, NOW)
    with pytest.raises(ValidationError, match="no git host 'svn'"):
        provider("svn")


HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "x-hub-signature-256", "x-hub-signature", "x-gitea-signature", "x-forgejo-signature",
            "x-gitlab-token", "webhook-signature", "webhook-id", "webhook-timestamp",
            "x-github-delivery", "x-request-uuid", "x-gitea-delivery", "x-gitlab-event-uuid",
        ]
    ),
    st.text(max_size=80),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(host=st.sampled_from(list(Provider)), headers=HEADERS, body=st.binary(max_size=200))
def test_verify_raises_only_its_defined_errors(
    host: Provider, headers: dict[str, str], body: bytes
) -> None:
    with contextlib.suppress(Unauthorized, ValidationError):
        verify(host, SECRET, headers, body, NOW)


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
EVENTS = st.sampled_from(
    ["push", "pull_request", "ping", "delete", "Push Hook", "Merge Request Hook", "repo:push",
     "pullrequest:created", "pullrequest:fulfilled", "issues", ""]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(host=st.sampled_from(list(Provider)), event=EVENTS, data=JSON)
def test_parse_raises_only_bad_payload_for_any_json(
    host: Provider, event: str, data: object
) -> None:
    try:
        found = parse(host, event, json.dumps(data).encode())
    except BadPayload:
        return
    assert all(isinstance(e.kind, Kind) for e in found)


@settings(max_examples=200, deadline=None)
@given(host=st.sampled_from(list(Provider)), event=EVENTS, body=st.binary(max_size=100))
def test_parse_raises_only_bad_payload_for_any_bytes(
    host: Provider, event: str, body: bytes
) -> None:
    with contextlib.suppress(BadPayload):
        parse(host, event, body)
