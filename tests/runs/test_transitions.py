"""The one table of run and step transitions: every move it lists works, every other one raises and
changes nothing."""

import itertools

import pytest

from core.errors import Conflict
from runs.choices import NEW, RUN_TRANSITIONS, STEP_TRANSITIONS, RunStatus, StepStatus, TransitionNotAllowed
from runs.models import Run, StepExecution
from runs.services import run_transition, step_transition
from tests.runs.helpers import workflow_with_agents

pytestmark = pytest.mark.django_db

RUN_MOVES = list(itertools.product(RunStatus.values, RunStatus.values))
STEP_MOVES = list(itertools.product([NEW, *StepStatus.values], StepStatus.values))


def test_every_status_has_a_row():
    assert set(RUN_TRANSITIONS) == set(RunStatus.values)
    assert set(STEP_TRANSITIONS) == {NEW, *StepStatus.values}


def test_retry_and_cancel_are_the_documented_moves():
    assert RUN_TRANSITIONS[RunStatus.FAILED] == {RunStatus.PENDING}
    assert RUN_TRANSITIONS[RunStatus.CANCELLED] == {RunStatus.PENDING}
    assert RUN_TRANSITIONS[RunStatus.COMPLETED] == set()
    assert STEP_TRANSITIONS[StepStatus.COMPLETED] == set()


def make_run(status: str) -> Run:
    workflow = workflow_with_agents("A", name=f"w-{Run.objects.count()}")
    return Run.objects.create(
        workflow=workflow, workflow_name=workflow.name, workflow_version=1, plan=workflow.definition, status=status
    )


@pytest.mark.parametrize(("source", "target"), RUN_MOVES)
def test_run_moves(source, target):
    run = make_run(source)
    if target in RUN_TRANSITIONS[source]:
        run_transition(run, target, source="api", error="boom" if target == RunStatus.FAILED else "")
        run.refresh_from_db()
        assert run.status == target
        return
    with pytest.raises(TransitionNotAllowed) as raised:
        run_transition(run, target, source="api")
    assert isinstance(raised.value, Conflict)  # the API answers 409 should one ever reach it
    assert f"from {source} to {target}" in raised.value.message
    run.refresh_from_db()
    assert run.status == source and not run.logs.exists()


@pytest.mark.parametrize(("source", "target"), STEP_MOVES)
def test_step_moves(source, target):
    run = make_run(RunStatus.RUNNING)
    execution = StepExecution(run=run, step_id="s")
    if source is not NEW:
        execution.status = source
        execution.save()
    allowed = target in STEP_TRANSITIONS[source]
    if allowed:
        step_transition(execution, target, run=run)
        assert execution.status == target
        return
    with pytest.raises(TransitionNotAllowed):
        step_transition(execution, target, run=run)
    assert execution.status == (source if source is not NEW else StepStatus.RUNNING)
