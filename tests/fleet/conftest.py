from tests.integration.conftest import servers  # noqa: F401
