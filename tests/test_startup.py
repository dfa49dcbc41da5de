"""shipway.startup: a process's modules load with the cycle collector paused."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shipway.startup import loading


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()
    gc.enable()


def test_collection_is_paused_while_loading_then_resumed_with_what_was_loaded_frozen() -> None:
    frozen = gc.get_freeze_count()
    with loading():
        assert not gc.isenabled()
        kept = [{"module": n} for n in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(kept)


def test_collection_resumes_when_loading_fails() -> None:
    with pytest.raises(ImportError), loading():
        raise ImportError("no module named 'missing'")
    assert gc.isenabled()
