"""Functions run against the real servers: V8, bubblewrap, Temporal and NATS."""

from tests.integration.conftest import servers  # noqa: F401
