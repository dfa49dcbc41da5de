"""`make fuzz` (tests/fuzz.py) as one of the end-to-end tests: schemathesis's time budget is
spent while the other workers run theirs, not after the whole suite."""

from __future__ import annotations

import pytest

from tests import fuzz

pytestmark = pytest.mark.e2e


def test_no_generated_request_gets_a_server_error_or_an_answer_off_the_schema() -> None:
    assert fuzz.main([]) == 0
