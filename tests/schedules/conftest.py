from datetime import UTC, datetime
from unittest import mock

import pytest

from tests.runs.helpers import workflow_with_agents


class Clock:
    """A frozen clock for django.utils.timezone.now, moved by hand."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    frozen = Clock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    with mock.patch("django.utils.timezone.now", frozen):
        yield frozen


@pytest.fixture
def workflow(db):
    schema = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
    return workflow_with_agents("sched-agent", name="scheduled", input_schema=schema)
