"""/hooks/PROVIDER/APP: webhook deliveries from GitHub, GitLab, Bitbucket and Gitea/Forgejo.

A delivery is verified on its raw body with the app's secret (no API token: the signature is
the credential), recorded once per delivery id, and answered at once; its work runs in a
HookWorkflow. Bodies over 25 MiB are refused (413) before they are read whole.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from temporalio.common import WorkflowIDReusePolicy

from shipway.api.auth import context
from shipway.api.routing import Route
from shipway.apps.secretbox import SecretBox
from shipway.errors import NotFound, ServiceError, ShipwayError, Unauthorized, ValidationError
from shipway.store import Store
from shipway.store.tables import HookDelivery
from shipway.webhooks import connections, events, verify
from shipway.webhooks.events import HookEvent, Kind
from shipway.webhooks.lifecycle import DeliveryStatus
from shipway.webhooks.workflow import HookInput, HookWorkflow, Work
from shipway.workers import CONTROL_QUEUE

log = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"], route_class=Route)

#: The largest delivery accepted; GitHub caps its payloads at 25 MB.
MAX_BODY = 25 * 1024 * 1024
PATH = "/hooks/{provider}/{app}"


@dataclass(frozen=True)
class _Accepted:
    """A recorded delivery and what it asks for; `row` None: its id was seen before."""

    row: HookDelivery | None
    work: list[Work]
    found: list[HookEvent]


@router.post(PATH, summary="Receive a webhook delivery from a git host", status_code=202)
async def receive(provider: str, app: str, request: Request) -> JSONResponse:
    """202 when the delivery is queued or ignored (with the reason), 200 for a ping or a
    delivery seen before, 401 for a bad signature, 404 for an app not connected."""
    ctx = context(request)
    try:
        host = verify.provider(provider)
    except ValidationError as e:
        raise NotFound(e.message) from None
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}
    box = SecretBox.load(ctx.settings.data_dir)
    accepted = await asyncio.to_thread(
        _accept, ctx.store, box, host, app, headers, body, time.time()
    )
    row = accepted.row
    if row is None:
        return JSONResponse(
            {"status": "duplicate", "message": "this delivery was received before; nothing done"},
            status_code=200,
        )
    answer = {"delivery": row.delivery_id, "event": row.event, "status": row.status}
    if row.status == DeliveryStatus.IGNORED:
        ping = all(e.kind is Kind.PING for e in accepted.found)
        return JSONResponse({**answer, "reason": row.detail}, status_code=200 if ping else 202)
    try:
        if ctx.temporal is None:
            raise ServiceError("Temporal is not reachable")
        await ctx.temporal.start_workflow(
            HookWorkflow.run,
            HookInput(row.id, row.app_id, accepted.work),
            id=f"hook/{row.id}",
            task_queue=CONTROL_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except Exception as e:
        # Forget the delivery so the host's redelivery is taken up, not refused as seen.
        await asyncio.to_thread(_forget, ctx.store, row.id)
        raise ServiceError(f"the delivery was not queued; redeliver it later: {e}") from e
    work = [asdict(w) for w in accepted.work]
    return JSONResponse({**answer, "work": work}, status_code=202)


def _accept(
    store: Store,
    box: SecretBox,
    host: verify.Provider,
    app: str,
    headers: dict[str, str],
    body: bytes,
    now: float,
) -> _Accepted:
    with store.transaction() as session:
        found = connections.candidates(session, box, host, app)
        if not found:
            raise NotFound(
                f"no app named {app!r} is connected to {host}; "
                f"connect it with `shipway apps connect {app} --provider {host} …`",
                details={"app": app, "provider": str(host)},
            )
        connection, delivery = _verified(found, headers, body, now)
        asked = events.parse(host, delivery.event, body)
        row = connections.record(session, connection, delivery, asked)
        work = [Work(e.kind, e.branch, e.sha, e.number) for e in events.acted_on(asked)]
        return _Accepted(row, work, asked)


def _verified(
    found: list[connections.Connection], headers: dict[str, str], body: bytes, now: float
) -> tuple[connections.Connection, verify.Delivery]:
    """The connection whose secret signed BODY (apps of one name in several organizations
    are told apart by their secrets), and the delivery it verifies."""
    refusal: ShipwayError | None = None
    for connection in found:
        try:
            return connection, verify.verify(
                connection.provider, connection.secret, headers, body, now
            )
        except Unauthorized as e:
            refusal = e
    assert refusal is not None
    log.warning("refused a %s delivery to %s: %s", found[0].provider, found[0].app, refusal)
    raise refusal


def _forget(store: Store, row_id: int) -> None:
    with store.transaction() as session:
        row = session.get(HookDelivery, row_id)
        if row is not None:
            session.delete(row)
