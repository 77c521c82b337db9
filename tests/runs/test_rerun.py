"""POST /runs/{id}/rerun through HTTP, and the executor driving the new run: reused steps are not called."""

import pytest

from audit.models import AuditEvent
from runs.choices import RunStatus
from runs.models import Run, StepExecution
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_blocks import drive, echo, loop_workflow, parallel_workflow
from tests.runs.test_executor import fresh, result, start, tasks

pytestmark = pytest.mark.django_db


def rerun(client, run, **body):
    return client.post(f"/api/v1/runs/{run.id}/rerun", body, format="json")


def completed_chain(*agents, text="a b"):
    run = run_execute(workflow=workflow_with_agents(*agents), input_data={"text": text}, user=None)
    answered = drive(run, lambda task: ({"text": f"{task['input_data']['text']}>{task['step_id']}"}, None))
    assert fresh(run).status == RunStatus.COMPLETED
    return run, answered


def steps_of(client, run_id) -> dict:
    return {s["step_id"]: s for s in client.get(f"/api/v1/runs/{run_id}/steps").json()["items"]}


def test_rerun_from_a_step_reuses_the_steps_before_it_and_calls_only_the_rest(operator):
    original, _ = completed_chain("a", "b", "c")
    response = rerun(operator, original, from_step="s2")
    assert response.status_code == 202
    body = response.json()
    assert body["id"] != str(original.id) and body["rerun_of"] == str(original.id) and body["status"] == "PENDING"
    assert response.headers["Location"].endswith(f"/runs/{body['id']}")
    new = Run.objects.get(pk=body["id"])
    assert new.plan == original.plan and new.input_data == original.input_data

    copied = steps_of(operator, new.id)["s1"]
    first = StepExecution.objects.get(run=original, step_id="s1")
    assert copied["status"] == "COMPLETED" and copied["reused"] is True and copied["output_data"] == first.output_data
    assert copied["task_id"] is None

    [task] = tasks(start(new))  # s1 is passed over: its agent gets no task
    assert task["step_id"] == "s2" and task["input_data"] == {"text": "a b>s1"}  # s1's copied output
    [task3] = tasks(result(task, {"text": "new s2"}))
    assert task3["step_id"] == "s3" and task3["input_data"] == {"text": "new s2"}
    assert tasks(result(task3, {"text": "done"})) == []
    new = fresh(new)
    assert new.status == RunStatus.COMPLETED and new.output_data == {"text": "done"}
    steps = steps_of(operator, new.id)
    assert [steps[s]["reused"] for s in ("s1", "s2", "s3")] == [True, False, False]
    assert StepExecution.objects.filter(run=new).count() == 3
    assert fresh(original).status == RunStatus.COMPLETED  # the original is untouched

    event = AuditEvent.objects.get(action="run.rerun")
    assert event.resource_id == str(new.id) and event.changes["rerun_of"] == [None, str(original.id)]
    listed = operator.get(f"/api/v1/runs?rerun_of={original.id}").json()["items"]
    assert [r["id"] for r in listed] == [str(new.id)]


def test_rerun_with_new_input_from_the_start_by_default(operator):
    original, _ = completed_chain("a", "b")
    body = rerun(operator, original, input_data={"text": "other"}).json()
    new = Run.objects.get(pk=body["id"])
    assert new.input_data == {"text": "other"} and not StepExecution.objects.filter(run=new).exists()
    [task] = tasks(start(new))
    assert task["step_id"] == "s1" and task["input_data"] == {"text": "other"}


def test_a_failed_run_is_rerun_from_the_step_that_failed(operator):
    run = run_execute(workflow=workflow_with_agents("a", "b"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    [task2] = tasks(result(task, {"text": "from s1"}))
    result(task2, error="Agent returned HTTP 500")
    assert fresh(run).status == RunStatus.FAILED
    new = Run.objects.get(pk=rerun(operator, run, from_step="s2").json()["id"])
    [again] = tasks(start(new))
    assert again["step_id"] == "s2" and again["input_data"] == {"text": "from s1"} and again["attempt"] == 1
    result(again, {"text": "ok"})
    assert fresh(new).status == RunStatus.COMPLETED


def test_a_reused_parallel_block_brings_its_children_for_later_references(operator):
    original = run_execute(workflow=parallel_workflow(), input_data={}, user=None)
    first = drive(original)
    assert fresh(original).status == RunStatus.COMPLETED
    after_input = next(t for t in first if t["step_id"] == "after")["input_data"]
    new = Run.objects.get(pk=rerun(operator, original, from_step="after").json()["id"])
    copied = {(r.step_id, r.parent.step_id if r.parent else None) for r in new.steps.filter(reused=True)}
    assert copied == {("p", None), ("a", "p"), ("b", "p"), ("c", "p")}
    answered = drive(new)
    assert [t["step_id"] for t in answered] == ["after"] and answered[0]["input_data"] == after_input
    assert fresh(new).status == RunStatus.COMPLETED


def test_a_reused_loop_is_copied_with_its_iterations(operator):
    original = run_execute(workflow=loop_workflow(), input_data={"items": [{"v": 1}, {"v": 2}]}, user=None)
    first = drive(original, echo)
    assert fresh(original).status == RunStatus.COMPLETED
    new = Run.objects.get(pk=rerun(operator, original, from_step="report").json()["id"])
    assert new.steps.filter(reused=True).count() == original.steps.count() - 1  # all but report
    answered = drive(new, echo)
    assert [t["step_id"] for t in answered] == ["report"]
    assert answered[0]["input_data"] == next(t for t in first if t["step_id"] == "report")["input_data"]


def test_rerun_of_an_active_run_is_409(operator):
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    response = rerun(operator, run)
    assert response.status_code == 409 and "finished" in response.json()["detail"]
    assert Run.objects.count() == 1


def test_from_step_unknown_inside_a_block_or_never_reached_is_422(operator):
    run = run_execute(workflow=workflow_with_agents("a", "b", "c"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    result(task, error="boom")  # s1 failed: s2 and s3 were never reached
    for from_step, says in (("nope", "not in"), ("s2", "never reached"), ("s3", "never reached"), ("", "")):
        response = rerun(operator, run, from_step=from_step)
        assert response.status_code == 422, from_step
        [error] = response.json()["errors"]
        assert error["field"] == "from_step" and says in error["message"]
    parallel = run_execute(workflow=parallel_workflow(), input_data={}, user=None)
    drive(parallel)
    response = rerun(operator, parallel, from_step="b")
    assert response.status_code == 422 and "inside a block" in response.json()["errors"][0]["message"]
    assert rerun(operator, parallel, input_data="text").status_code == 422
    assert Run.objects.count() == 2


def test_new_input_is_checked_against_the_schema(operator):
    schema = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
    run = run_execute(workflow=workflow_with_agents("a", input_schema=schema), input_data={"text": "x"}, user=None)
    drive(run, echo)
    response = rerun(operator, run, input_data={"text": 5})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "input_data.text"


def test_viewers_cannot_rerun(viewer):
    run, _ = completed_chain("a")
    assert rerun(viewer, run).status_code == 403
