"""Output serializers that write their `to_representation` out by hand (the fast path for long lists)
return exactly the fields they declare, which are the ones the OpenAPI schema documents. A new
hand-written serializer needs a sample here, or this test fails."""

import importlib
import inspect
from pathlib import Path

import pytest
from rest_framework import serializers

from audit.models import AuditEvent
from runs.models import RunLog, StepExecution
from runs.services import run_execute
from tests.factories import AgentFactory
from tests.runs.helpers import workflow_with_agents
from workflows.models import WorkflowVersion

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def hand_written() -> list[type[serializers.BaseSerializer]]:
    found = {}
    for path in sorted(ROOT.glob("*/api/serializers.py")):
        module = importlib.import_module(f"{path.parts[-3]}.api.serializers")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, serializers.BaseSerializer) and "to_representation" in vars(cls):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[name] for name in sorted(found)]


def samples() -> dict[str, object]:
    """One object per hand-written serializer, keyed by class name."""
    agent = AgentFactory(name="A", auth_type="bearer", auth_config={"token": "t"})
    workflow = workflow_with_agents("B", name="sample")
    run = run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
    step = StepExecution.objects.create(run=run, step_id="s1", agent_name="B", input_data={"text": "x"})
    return {
        "AgentSerializer": agent,
        "AuditEventSerializer": AuditEvent.objects.first(),
        "WorkflowSerializer": workflow,
        "WorkflowSummarySerializer": workflow,
        "WorkflowVersionSerializer": WorkflowVersion.objects.get(workflow=workflow),
        "RunSerializer": run,
        "RunActionSerializer": run,
        "RunRetrySerializer": run,
        "StepExecutionSerializer": step,
        "RunLogSerializer": RunLog.objects.filter(run=run).first(),
    }


HAND_WRITTEN = hand_written()


def test_the_fast_serializers_are_found():
    names = {cls.__name__ for cls in HAND_WRITTEN}
    assert {"AgentSerializer", "RunSerializer", "AuditEventSerializer"} <= names


@pytest.mark.parametrize("serializer_class", HAND_WRITTEN, ids=lambda cls: cls.__name__)
def test_representation_has_exactly_the_declared_fields(serializer_class):
    sample = samples().get(serializer_class.__name__)
    assert sample is not None, f"add a sample object for {serializer_class.__name__} to samples()"
    serializer = serializer_class(sample)
    declared = [name for name, field in serializer.fields.items() if not field.write_only]
    data = serializer.data
    extra, missing = set(data) - set(declared), set(declared) - set(data)
    assert not extra and not missing, f"{serializer_class.__name__}: extra {extra}, missing {missing}"
