"""Schedules for tests outside this folder (the admin walk): a workflow with a known id, and a schedule on it."""

import itertools

from schedules.services import schedule_create
from tests.factories import AgentFactory
from tests.runs.helpers import chain
from workflows.models import Workflow
from workflows.services import workflow_create

SCHEDULED_WORKFLOW_ID = "00000000-0000-4000-8000-0000000005c0"
_NUMBERS = itertools.count()


def scheduled_workflow() -> Workflow:
    found = Workflow.objects.filter(pk=SCHEDULED_WORKFLOW_ID).first()
    if found:
        return found
    AgentFactory(name="scheduled-walker")
    definition = chain("scheduled-walker", name="scheduled-walked")
    return workflow_create(user=None, definition=definition, workflow_id=SCHEDULED_WORKFLOW_ID)


def schedule_make(**data):
    data = {"name": f"schedule-{next(_NUMBERS)}", "workflow_id": scheduled_workflow().pk, "cron": "*/5 * * * *", **data}
    return schedule_create(user=None, data=data)
