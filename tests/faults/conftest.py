import logging

import pytest


@pytest.fixture(scope="session", autouse=True)
def quiet_http_client_logs():
    """Every status poll is an httpx INFO record: they would bury a failure's report."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)
