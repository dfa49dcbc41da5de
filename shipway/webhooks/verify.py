"""Is a webhook delivery from the host we share a secret with? Each host signs its raw body
its own way; every comparison is constant-time. A delivery that passes says its id (hosts
redeliver, so a seen id is done already) and its event.

- GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`; id `X-GitHub-Delivery`,
  event `X-GitHub-Event`.
- GitLab: `X-Gitlab-Token` equals the secret; when the signed form is there too,
  `webhook-signature: v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`
  within TOLERANCE of now; id `X-Gitlab-Event-UUID` or `webhook-id`, event `X-Gitlab-Event`.
- Bitbucket Cloud: `X-Hub-Signature: sha256=<hex>`; id `X-Request-UUID`, event `X-Event-Key`.
- Gitea / Forgejo: `X-Gitea-Signature` or `X-Forgejo-Signature`: `<hex>`; id
  `X-Gitea-Delivery` (or `X-Forgejo-Delivery`), event `X-Gitea-Event` (or `X-Forgejo-Event`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from shipway.errors import BadRequest, Unauthorized, ValidationError

#: How far the signed form's timestamp may be from now, in seconds.
TOLERANCE = 300
#: The longest delivery id kept.
MAX_ID = 128


class Provider(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    BITBUCKET = "bitbucket"
    GITEA = "gitea"


@dataclass(frozen=True)
class Delivery:
    provider: Provider
    id: str
    event: str


def provider(name: str) -> Provider:
    try:
        return Provider(name)
    except ValueError:
        known = ", ".join(p.value for p in Provider)
        raise ValidationError(f"no git host {name!r}; one of {known}") from None


def verify(
    host: Provider, secret: str, headers: Mapping[str, str], body: bytes, now: float
) -> Delivery:
    """The delivery BODY came with HEADERS (names in lower case), if signed with SECRET;
    Unauthorized, naming what is wrong, if not."""
    if host is Provider.GITHUB:
        _hex_signature(headers.get("x-hub-signature-256"), secret, body, "X-Hub-Signature-256")
        return _delivery(host, headers, "x-github-delivery", "x-github-event")
    if host is Provider.BITBUCKET:
        _hex_signature(headers.get("x-hub-signature"), secret, body, "X-Hub-Signature")
        return _delivery(host, headers, "x-request-uuid", "x-event-key")
    if host is Provider.GITEA:
        signed = headers.get("x-gitea-signature") or headers.get("x-forgejo-signature")
        _hex_signature(signed, secret, body, "X-Gitea-Signature", prefix="")
        id_header = "x-gitea-delivery" if "x-gitea-delivery" in headers else "x-forgejo-delivery"
        event_header = "x-gitea-event" if "x-gitea-event" in headers else "x-forgejo-event"
        return _delivery(host, headers, id_header, event_header)
    token = headers.get("x-gitlab-token")
    if token is None or not hmac.compare_digest(token.encode(), secret.encode()):
        raise Unauthorized("X-Gitlab-Token is missing or is not the app's webhook secret")
    if "webhook-signature" in headers:
        _gitlab_signed(headers, secret, body, now)
    id_header = "x-gitlab-event-uuid" if "x-gitlab-event-uuid" in headers else "webhook-id"
    return _delivery(host, headers, id_header, "x-gitlab-event")


def _hex_signature(
    signed: str | None, secret: str, body: bytes, header: str, prefix: str = "sha256="
) -> None:
    if not signed:
        raise Unauthorized(f"{header} is missing: the delivery is not signed")
    expected = prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signed.strip().lower().encode(), expected.encode()):
        raise Unauthorized(f"{header} does not match the body signed with the app's secret")


def _gitlab_signed(headers: Mapping[str, str], secret: str, body: bytes, now: float) -> None:
    hook_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    if not hook_id or not stamp.isdigit() or len(stamp) > 12:
        raise Unauthorized("webhook-signature needs webhook-id and a numeric webhook-timestamp")
    if abs(now - int(stamp)) > TOLERANCE:
        raise Unauthorized(
            f"webhook-timestamp is more than {TOLERANCE // 60} minutes from now: a replay?"
        )
    message = f"{hook_id}.{stamp}.".encode() + body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    for signature in headers["webhook-signature"].split():
        version, _, encoded = signature.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            return
    raise Unauthorized("webhook-signature does not match the body signed with the app's secret")


def _delivery(host: Provider, headers: Mapping[str, str], id_header: str, event: str) -> Delivery:
    delivery_id = headers.get(id_header, "").strip()
    if not delivery_id or len(delivery_id) > MAX_ID or not delivery_id.isprintable():
        raise BadRequest(f"{id_header} must be the delivery's id (1-{MAX_ID} characters)")
    return Delivery(host, delivery_id, headers.get(event, "").strip())
