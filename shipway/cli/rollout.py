"""Waiting for the release a change started (a config change, an add-on attached or detached),
as a push waits for its own: the API names that deployment in a header."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer

from shipway.cli.output import console, emit_json
from shipway.client.api import Api
from shipway.client.upload import DEPLOYMENT_HEADER, released, settle
from shipway.errors import ClientError

NoWaitOpt = Annotated[
    bool, typer.Option("--no-wait", help="return once the change is stored, before it is live")
]


def roll_out(
    api: Api,
    response: httpx.Response,
    result: Any,
    done: str,
    what: str,
    *,
    wait: bool,
    as_json: bool,
    label: str = "result",
) -> None:
    """Report a change whose answer is RESPONSE (RESULT, its body): DONE says what changed.
    Unless told not to, wait for the deployment it started (named WHAT in a failure) and exit
    1 if that fails. JSON output is {LABEL: RESULT, "deployment": …}."""
    started = response.headers.get(DEPLOYMENT_HEADER)  # none: nothing live yet, or no change
    said, code, deployment = f"{done}.", 0, None
    if started is not None and not wait:
        deployment = api.get(f"/deployments/{started}")
        said = f"{done}; deployment {started} is under way."
    elif started is not None:
        if not as_json:
            console.print(f"{done}; deploying the change …", highlight=False)
        deployment = settle(api, int(started))
        said, code = released(what, deployment)
    if as_json:
        emit_json({label: result, "deployment": deployment})
        if code:
            raise typer.Exit(code)
    elif code:
        raise ClientError(said)
    else:
        console.print(said, highlight=False)
