"""The activity log against real stores, and its NATS intake against a real NATS server."""

from tests.integration.conftest import servers  # noqa: F401
