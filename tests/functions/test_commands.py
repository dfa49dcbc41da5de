"""Who may call a function: anyone a public one, a deployer of its organization a private one,
which to other organizations does not exist."""

from __future__ import annotations

import pytest

from shipway.accounts.roles import Principal, Role
from shipway.errors import Forbidden, NotFound, Unauthorized
from shipway.functions.commands import authorize_call
from shipway.functions.registry import Deployed


def function(public: bool) -> Deployed:
    return Deployed(
        organization_id=1,
        function_id=7,
        name="report",
        version=1,
        runtime="js",
        source="function handler() {}",
        timeout=30,
        memory_mb=128,
        public=public,
    )


def test_anyone_may_call_a_public_function() -> None:
    authorize_call(None, function(public=True))
    authorize_call(Principal(2, Role.VIEWER, "token:9"), function(public=True))


def test_a_private_function_needs_a_token() -> None:
    with pytest.raises(Unauthorized, match="report is not public: send Authorization"):
        authorize_call(None, function(public=False))


def test_a_private_function_of_another_organization_does_not_exist() -> None:
    with pytest.raises(NotFound, match="no function named 'report'") as caught:
        authorize_call(Principal(2, Role.OWNER, "token:9"), function(public=False))
    assert caught.value.details == {"name": "report"}


def test_a_private_function_needs_a_deployer_of_its_organization() -> None:
    with pytest.raises(Forbidden, match="needs the deployer role"):
        authorize_call(Principal(1, Role.VIEWER, "token:3"), function(public=False))
    authorize_call(Principal(1, Role.DEPLOYER, "token:4"), function(public=False))
