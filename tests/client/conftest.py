"""Servers for the client's tests: the whole API behind uvicorn (from the CLI's tests), with a
1 MiB source limit, and the scripted deployments API beside the git route (from the git
server's tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.settings import Settings
from tests.cli.conftest import Server, server  # noqa: F401
from tests.gitserver.conftest import Shipway, ship, shipway  # noqa: F401


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load({"data_dir": tmp_path / "data", "port": 8080, "max_source_mb": 1}, env={})
