"""Control-flow steps in the executor, message by message: parallel, conditional, loop, fork-join;
retry and cancel inside blocks; the rows and monitoring updates they leave."""

from collections import deque

import pytest
from django.conf import settings

from agents.models import Agent
from runs.choices import RunStatus, StepStatus
from runs.models import StepExecution
from runs.services import run_cancel, run_execute, run_retry
from tests.factories import AgentFactory
from tests.runs.test_executor import fresh, result, start, tasks
from workflows.services import workflow_create

pytestmark = pytest.mark.django_db


def agent(step_id: str, name: str = "echo", **fields) -> dict:
    return {"id": step_id, "agent_name": name, "input_mapping": fields.pop("input", {}), "next_step": None, **fields}


def workflow(steps: dict, start_step: str, **extra):
    for name in {s.get("agent_name") for s in steps.values() if s.get("agent_name")}:
        if not Agent.objects.live().filter(name=name).exists():
            AgentFactory(name=name)
    definition = {"name": extra.pop("name", "blocks"), "start_step": start_step, "steps": steps, **extra}
    return workflow_create(user=None, definition=definition)


def echo(task):
    """The default agent: answers with its input plus the step id."""
    return {**task["input_data"], "step": task["step_id"]}, None


def drive(run, answer=echo, *, limit: int = 10_000, order=deque.popleft):
    """Starts the run and answers every agent task (FIFO by default) until none is left.
    `answer(task)` returns (output, error). Returns the tasks in the order they were answered."""
    queue = deque(tasks(start(run)))
    answered = []
    while queue and len(answered) < limit:
        task = order(queue)
        output, error = answer(task)
        answered.append(task)
        queue.extend(tasks(result(task, output, error)))
    return answered


def rows(run, **filters):
    return list(StepExecution.objects.filter(run=run, **filters).order_by("created_at", "id"))


# -- parallel ------------------------------------------------------------------------------------


def parallel_workflow(max_parallelism=None):
    steps = {
        "p": {"id": "p", "type": "parallel", "parallel_steps": ["a", "b", "c"], "next_step": "after"},
        "a": agent("a", input={"n": 1}),
        "b": agent("b", input={"n": 2}),
        "c": agent("c", input={"n": 3}),
        "after": agent("after", input={"all": "${p.output}", "b": "${b.output.n}"}),
    }
    if max_parallelism:
        steps["p"]["max_parallelism"] = max_parallelism
    return workflow(steps, "p")


def test_parallel_output_and_what_follows():
    run = run_execute(workflow=parallel_workflow(), input_data={}, user=None)
    answered = drive(run)
    assert [t["step_id"] for t in answered][-1] == "after"
    run = fresh(run)
    assert run.status == RunStatus.COMPLETED
    assert run.output_data["all"] == {
        "a": {"n": 1, "step": "a"},
        "b": {"n": 2, "step": "b"},
        "c": {"n": 3, "step": "c"},
    }
    assert run.output_data["b"] == 2
    [block] = rows(run, step_id="p")
    assert block.step_type == "parallel" and block.status == StepStatus.COMPLETED and block.completed_at
    assert {r.parent_id for r in rows(run, step_id__in=["a", "b", "c"])} == {block.id}


def test_parallel_respects_max_parallelism():
    run = run_execute(workflow=parallel_workflow(max_parallelism=2), input_data={}, user=None)
    first = tasks(start(run))
    assert [t["step_id"] for t in first] == ["a", "b"]
    then = tasks(result(first[0], {"ok": 1}))
    assert [t["step_id"] for t in then] == ["c"]


def test_parallel_fails_when_a_child_fails_and_cancels_the_others():
    run = run_execute(workflow=parallel_workflow(), input_data={}, user=None)
    first = tasks(start(run))
    sent = result(first[1], error="boom")
    assert not tasks(sent)
    run = fresh(run)
    assert run.status == RunStatus.FAILED
    assert run.error_message == "Step 'p' failed: Step 'b' failed: boom"
    statuses = {r.step_id: r.status for r in rows(run)}
    assert statuses == {"p": "FAILED", "a": "CANCELLED", "b": "FAILED", "c": "CANCELLED"}
    late = result(first[0], {"late": True})  # a result after the block was decided changes nothing
    assert not tasks(late) and fresh(run).status == RunStatus.FAILED


# -- conditional ---------------------------------------------------------------------------------


def conditional_workflow(expression="${workflow.input.score} >= 0.8"):
    steps = {
        "check": {
            "id": "check",
            "type": "conditional",
            "condition": {"expression": expression},
            "if_true_step": "yes",
            "if_false_step": "no",
            "next_step": "end",
        },
        "yes": agent("yes", input={"branch": "yes"}),
        "no": agent("no", input={"branch": "no"}),
        "end": agent("end", input={"decision": "${check.output}"}),
    }
    return workflow(steps, "check")


@pytest.mark.parametrize(
    ("score", "taken", "skipped", "label"), [(0.9, "yes", "no", "then"), (0.1, "no", "yes", "else")]
)
def test_conditional_takes_one_branch_and_skips_the_other(score, taken, skipped, label):
    run = run_execute(workflow=conditional_workflow(), input_data={"score": score}, user=None)
    answered = drive(run)
    assert [t["step_id"] for t in answered] == [taken, "end"]
    run = fresh(run)
    assert run.status == RunStatus.COMPLETED
    assert run.output_data["decision"] == {
        "condition_result": score >= 0.8,
        "branch_taken": label,
        "branch_step_id": taken,
        "branch_output": {"branch": taken, "step": taken},
    }
    statuses = {r.step_id: r.status for r in rows(run)}
    assert statuses == {"check": "COMPLETED", taken: "COMPLETED", skipped: "SKIPPED", "end": "COMPLETED"}


def test_a_condition_that_cannot_be_evaluated_fails_the_step_never_takes_a_branch():
    run = run_execute(workflow=conditional_workflow(), input_data={"score": "high"}, user=None)
    assert drive(run) == []
    run = fresh(run)
    assert run.status == RunStatus.FAILED
    assert "Step 'check' failed: the condition" in run.error_message and "Cannot compare" in run.error_message
    assert {r.step_id for r in rows(run)} == {"check"}


def test_exists_sees_that_the_other_branch_was_skipped():
    wf = conditional_workflow()
    steps = dict(wf.definition["steps"])
    steps["end"] = {
        "id": "end",
        "type": "conditional",
        "condition": {"expression": "exists(${no.output}) or exists(${yes.output.branch})"},
        "if_true_step": "fin",
        "if_false_step": None,
    }
    steps["fin"] = agent("fin")
    run = run_execute(workflow=workflow(steps, "check", name="skips"), input_data={"score": 0.9}, user=None)
    assert [t["step_id"] for t in drive(run)] == ["yes", "fin"]
    assert fresh(run).status == RunStatus.COMPLETED


# -- loop ----------------------------------------------------------------------------------------


def loop_workflow(**config):
    steps = {
        "each": {
            "id": "each",
            "type": "loop",
            "loop_config": {
                "collection": "${workflow.input.items}",
                "loop_body": ["double", "label"],
                **config,
            },
            "next_step": "report",
        },
        "double": agent("double", input={"value": "${loop.item.v}", "index": "${loop.index}"}),
        "label": agent(
            "label",
            input={
                "doubled": "${double.output.value}",
                "first": "${loop.is_first}",
                "last": "${loop.is_last}",
                "total": "${loop.total}",
            },
        ),
        "report": agent("report", input={"loop": "${each.output}"}),
    }
    return workflow(steps, "each")


def doubling(task):
    data = task["input_data"]
    if task["step_id"] == "double":
        if data["value"] == "bad":
            return None, "cannot double"
        return {"value": data["value"] * 2}, None
    return data, None


def test_sequential_loop_runs_the_body_per_item_with_the_loop_context():
    items = [{"v": 1}, {"v": 2}, {"v": 3}]
    run = run_execute(workflow=loop_workflow(), input_data={"items": items}, user=None)
    answered = drive(run, doubling)
    assert [(t["step_id"], t["input_data"].get("index")) for t in answered][:4] == [
        ("double", 0),
        ("label", None),
        ("double", 1),
        ("label", None),
    ]
    run = fresh(run)
    assert run.status == RunStatus.COMPLETED, run.error_message
    output = run.output_data["loop"]
    assert output["total_count"] == 3 and output["failed_count"] == 0 and "errors" not in output
    assert output["iterations"] == [
        {"doubled": 2, "first": True, "last": False, "total": 3},
        {"doubled": 4, "first": False, "last": False, "total": 3},
        {"doubled": 6, "first": False, "last": True, "total": 3},
    ]
    slots = rows(run, step_type="iteration")
    assert [(s.iteration, s.status, s.scope) for s in slots] == [
        (0, "COMPLETED", "each[0]"),
        (1, "COMPLETED", "each[1]"),
        (2, "COMPLETED", "each[2]"),
    ]
    body = rows(run, step_id="double")
    assert [(r.iteration, r.scope, r.parent.step_type) for r in body] == [
        (0, "each[0]", "iteration"),
        (1, "each[1]", "iteration"),
        (2, "each[2]", "iteration"),
    ]


def test_parallel_loop_keeps_max_parallelism_in_flight():
    items = [{"v": n} for n in range(7)]
    run = run_execute(
        workflow=loop_workflow(execution_mode="parallel", max_parallelism=3), input_data={"items": items}, user=None
    )
    first = tasks(start(run))
    assert [t["input_data"]["index"] for t in first] == [0, 1, 2]
    answered = drive_from(first, doubling)
    assert len(answered) == 7 * 2 + 1
    run = fresh(run)
    assert run.status == RunStatus.COMPLETED
    assert [i["doubled"] for i in run.output_data["loop"]["iterations"]] == [n * 2 for n in range(7)]


def drive_from(queue, answer):
    queue, answered = deque(queue), []
    while queue:
        task = queue.popleft()
        answered.append(task)
        in_flight = len(queue) + 1
        assert in_flight <= 3
        queue.extend(tasks(result(task, *answer(task))))
    return answered


@pytest.mark.parametrize("on_error", ["continue", "collect"])
def test_loop_continue_and_collect_run_every_iteration_and_record_failures(on_error):
    items = [{"v": 1}, {"v": "bad"}, {"v": 3}]
    run = run_execute(workflow=loop_workflow(on_error=on_error), input_data={"items": items}, user=None)
    drive(run, doubling)
    run = fresh(run)
    assert run.status == RunStatus.COMPLETED
    output = run.output_data["loop"]
    assert output["failed_count"] == 1 and output["total_count"] == 3
    assert output["iterations"][1] is None and output["iterations"][2]["doubled"] == 6
    assert output["errors"] == [{"index": 1, "error": "Step 'double' failed: cannot double"}]


def test_loop_stop_fails_at_the_first_failed_iteration():
    items = [{"v": 1}, {"v": "bad"}, {"v": 3}]
    run = run_execute(workflow=loop_workflow(on_error="stop"), input_data={"items": items}, user=None)
    answered = drive(run, doubling)
    assert [t["input_data"].get("index") for t in answered if t["step_id"] == "double"] == [0, 1]
    run = fresh(run)
    assert run.status == RunStatus.FAILED
    assert run.error_message == "Step 'each' failed: iteration 1: Step 'double' failed: cannot double"
    assert [(s.iteration, s.status) for s in rows(run, step_type="iteration")] == [
        (0, "COMPLETED"),
        (1, "FAILED"),
        (2, "CANCELLED"),
    ]


@pytest.mark.parametrize(
    ("items", "config", "message"),
    [
        ("not a list", {}, "the collection ${workflow.input.items} is a string, not an array"),
        ([1, 2, 3], {"max_iterations": 2}, "the collection has 3 items, more than max_iterations (2)"),
    ],
)
def test_bad_collections_fail_the_loop_naming_the_cause(items, config, message):
    run = run_execute(workflow=loop_workflow(**config), input_data={"items": items}, user=None)
    assert drive(run) == []
    assert fresh(run).error_message == f"Step 'each' failed: {message}"


def test_an_empty_collection_completes_at_once():
    run = run_execute(workflow=loop_workflow(), input_data={"items": []}, user=None)
    answered = drive(run)
    assert [t["step_id"] for t in answered] == ["report"]
    assert fresh(run).output_data["loop"] == {"iterations": [], "total_count": 0, "failed_count": 0}


def test_retry_runs_only_the_iterations_that_did_not_complete():
    items = [{"v": 1}, {"v": "bad"}, {"v": 3}]
    run = run_execute(workflow=loop_workflow(on_error="stop"), input_data={"items": items}, user=None)
    drive(run, doubling)
    assert fresh(run).status == RunStatus.FAILED
    calls_before = StepExecution.objects.filter(run=run, step_type="agent").count()
    run_retry(run=fresh(run), user=None)

    def fixed(task):
        if task["step_id"] == "double" and task["input_data"]["value"] == "bad":
            return {"value": "badbad"}, None
        return doubling(task)

    answered = drive(run, fixed)
    # Iteration 0 completed before: neither of its body steps is called again.
    assert [(t["step_id"], t["input_data"].get("index")) for t in answered if t["step_id"] == "double"] == [
        ("double", 1),
        ("double", 2),
    ]
    run = fresh(run)
    assert run.status == RunStatus.COMPLETED and run.attempt == 2
    assert [i["doubled"] for i in run.output_data["loop"]["iterations"]] == [2, "badbad", 6]
    assert StepExecution.objects.filter(run=run, step_type="agent").count() == calls_before + 2 * 2 + 1


def test_cancel_inside_a_loop_dispatches_nothing_more():
    items = [{"v": n} for n in range(5)]
    run = run_execute(
        workflow=loop_workflow(execution_mode="parallel", max_parallelism=2), input_data={"items": items}, user=None
    )
    first = tasks(start(run))
    run_cancel(run=fresh(run), user=None)
    assert not tasks(result(first[0], {"value": 2}))
    active = StepExecution.objects.filter(run=run, status__in=["PENDING", "RUNNING"])
    assert not active.exists()
    assert {s.status for s in rows(run, step_type="iteration")} == {"CANCELLED"}


# -- fork-join -----------------------------------------------------------------------------------


def fork_workflow(policy="all", n_required=None, **branch_extra):
    config = {
        "branches": {
            "left": {"steps": ["l1", "l2"], **branch_extra},
            "right": {"steps": ["r1"]},
            "middle": {"steps": ["m1"]},
        },
        "join_policy": policy,
    }
    if n_required:
        config["n_required"] = n_required
    steps = {
        "fan": {"id": "fan", "type": "fork_join", "fork_join_config": config, "next_step": "join"},
        "l1": agent("l1", input={"side": "left"}),
        "l2": agent("l2", input={"prev": "${l1.output.side}"}),
        "r1": agent("r1", input={"side": "right"}),
        "m1": agent("m1", input={"side": "middle"}),
        "join": agent("join", input={"fan": "${fan.output}"}),
    }
    return workflow(steps, "fan")


def test_fork_join_runs_branches_together_and_steps_of_a_branch_in_order():
    run = run_execute(workflow=fork_workflow(), input_data={}, user=None)
    first = tasks(start(run))
    assert sorted(t["step_id"] for t in first) == ["l1", "m1", "r1"]
    drive_from_all(first)
    run = fresh(run)
    assert run.status == RunStatus.COMPLETED, run.error_message
    fan = run.output_data["fan"]
    assert fan["left"] == {"prev": "left", "step": "l2"}
    assert fan["right"] == {"side": "right", "step": "r1"}
    assert fan["branch_status"] == {"left": "COMPLETED", "right": "COMPLETED", "middle": "COMPLETED"}
    branches = rows(run, step_type="branch")
    assert sorted((b.branch, b.scope, b.status) for b in branches) == [
        ("left", "fan:left", "COMPLETED"),
        ("middle", "fan:middle", "COMPLETED"),
        ("right", "fan:right", "COMPLETED"),
    ]
    assert {r.branch for r in rows(run, step_id__in=["l1", "l2"])} == {"left"}


def drive_from_all(queue, answer=echo):
    queue = deque(queue)
    while queue:
        task = queue.popleft()
        queue.extend(tasks(result(task, *answer(task))))


def failing(*names):
    def answer(task):
        if task["step_id"] in names:
            return None, f"{task['step_id']} broke"
        return echo(task)

    return answer


def test_fork_join_all_fails_when_a_branch_fails():
    run = run_execute(workflow=fork_workflow(), input_data={}, user=None)
    drive(run, failing("r1"))
    run = fresh(run)
    assert run.status == RunStatus.FAILED
    assert "2 of 3 branches succeeded" not in run.error_message
    assert "needed (join_policy 'all'): branch 'right': Step 'r1' failed: r1 broke" in run.error_message


@pytest.mark.parametrize(
    ("policy", "n_required", "broken", "status"),
    [
        ("any", None, ("r1", "m1"), RunStatus.COMPLETED),
        ("majority", None, ("r1",), RunStatus.COMPLETED),
        ("majority", None, ("r1", "m1"), RunStatus.FAILED),
        ("n_of_m", 3, ("m1",), RunStatus.FAILED),
        ("n_of_m", 2, ("m1",), RunStatus.COMPLETED),
    ],
)
def test_join_policies(policy, n_required, broken, status):
    run = run_execute(workflow=fork_workflow(policy, n_required), input_data={}, user=None)
    drive(run, failing(*broken))
    assert fresh(run).status == status, fresh(run).error_message


def test_any_is_decided_by_the_first_branch_and_cancels_the_rest():
    run = run_execute(workflow=fork_workflow("any"), input_data={}, user=None)
    first = {t["step_id"]: t for t in tasks(start(run))}
    sent = result(first["r1"], {"won": True})
    assert [t["step_id"] for t in tasks(sent)] == ["join"]
    fan = fresh(run).steps.get(step_id="fan", step_type="fork_join").output_data
    assert fan["right"] == {"won": True}
    assert fan["branch_status"] == {"left": "CANCELLED", "right": "COMPLETED", "middle": "CANCELLED"}
    assert StepExecution.objects.get(run=run, step_id="l1").status == StepStatus.CANCELLED


def test_monitoring_covers_blocks_and_children():
    run = run_execute(workflow=parallel_workflow(), input_data={}, user=None)
    sent = start(run)
    updates = [(m.payload["step_id"], m.payload["status"]) for m in sent if m.topic == settings.KAFKA_MONITORING_TOPIC]
    assert updates[:2] == [("workflow", "RUNNING"), ("p", "RUNNING")]
    assert {("a", "RUNNING"), ("b", "RUNNING"), ("c", "RUNNING")} <= set(updates)


# -- nesting, deadlines, redelivery --------------------------------------------------------------


def test_blocks_nest_a_parallel_inside_a_loop_inside_a_fork_join():
    steps = {
        "fan": {
            "id": "fan",
            "type": "fork_join",
            "fork_join_config": {"branches": {"a": {"steps": ["each"]}, "b": {"steps": ["solo"]}}},
        },
        "each": {
            "id": "each",
            "type": "loop",
            "loop_config": {
                "collection": "${workflow.input.items}",
                "loop_body": ["both"],
                "execution_mode": "parallel",
            },
        },
        "both": {"id": "both", "type": "parallel", "parallel_steps": ["x", "y"]},
        "x": agent("x", input={"item": "${loop.item}", "i": "${loop.index}"}),
        "y": agent("y", input={"item": "${loop.item}"}),
        "solo": agent("solo"),
    }
    run = run_execute(workflow=workflow(steps, "fan", name="nested"), input_data={"items": ["p", "q"]}, user=None)
    answered = drive(run)
    assert sorted(t["step_id"] for t in answered) == ["solo", "x", "x", "y", "y"]
    run = fresh(run)
    assert run.status == RunStatus.COMPLETED, run.error_message
    loop_output = run.output_data["a"]
    assert loop_output["iterations"] == [
        {"x": {"item": "p", "i": 0, "step": "x"}, "y": {"item": "p", "step": "y"}},
        {"x": {"item": "q", "i": 1, "step": "x"}, "y": {"item": "q", "step": "y"}},
    ]
    x1 = StepExecution.objects.get(run=run, step_id="x", iteration=1)
    assert x1.scope == "fan:a/each[1]" and x1.branch == "a" and x1.parent.step_id == "both"


def test_a_redelivered_execution_request_dispatches_nothing_twice():
    run = run_execute(workflow=parallel_workflow(), input_data={}, user=None)
    first = tasks(start(run))
    assert len(first) == 3
    assert not tasks(start(run))  # the same request again (at-least-once delivery)
    assert StepExecution.objects.filter(run=run).count() == 4


def test_a_fork_join_branch_times_out():
    from datetime import timedelta

    from django.utils import timezone

    from runs.executor import overdue_handle

    run = run_execute(workflow=fork_workflow(timeout_seconds=5), input_data={}, user=None)
    first = {t["step_id"]: t for t in tasks(start(run))}
    result(first["r1"], {"ok": 1})
    result(first["m1"], {"ok": 1})
    left = StepExecution.objects.get(run=run, step_type="branch", branch="left")
    assert left.due_at is not None
    StepExecution.objects.filter(pk=left.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    overdue_handle([])
    run = fresh(run)
    assert run.status == RunStatus.FAILED
    assert "(join_policy 'all'): branch 'left': timed out after 5 s" in run.error_message
    assert StepExecution.objects.get(run=run, step_id="l1").status == StepStatus.CANCELLED


def test_an_agent_step_in_a_loop_is_retried_after_a_timeout():
    from datetime import timedelta

    from django.utils import timezone

    from runs.executor import overdue_handle

    wf = loop_workflow()
    run = run_execute(workflow=wf, input_data={"items": [{"v": 1}]}, user=None)
    [task] = tasks(start(run))
    StepExecution.objects.filter(run=run, step_id="double").update(due_at=timezone.now() - timedelta(seconds=1))
    overdue_handle([])
    retry = StepExecution.objects.get(run=run, step_id="double", try_number=2)
    assert retry.status == StepStatus.PENDING and retry.scope == "each[0]" and retry.parent.step_type == "iteration"
    StepExecution.objects.filter(pk=retry.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    sent = []
    overdue_handle(sent)
    [again] = tasks(sent)
    assert again["step_id"] == "double" and again["input_data"] == task["input_data"]
    drive_from_all([again], doubling)
    assert fresh(run).status == RunStatus.COMPLETED


def test_the_steps_list_shows_where_each_row_ran_and_filters_by_it():
    from rest_framework.test import APIClient

    from tests.conftest import make_user

    items = [{"v": 1}, {"v": 2}]
    run = run_execute(workflow=loop_workflow(), input_data={"items": items}, user=None)
    drive(run, doubling)
    client = APIClient()
    client.force_authenticate(make_user("viewer-of-steps", "viewer"))
    body = client.get(f"/api/v1/runs/{run.id}/steps?step_type=iteration").json()
    assert [(s["iteration"], s["scope"], s["step_id"]) for s in body["items"]] == [
        (0, "each[0]", "each"),
        (1, "each[1]", "each"),
    ]
    slot = body["items"][1]
    inside = client.get(f"/api/v1/runs/{run.id}/steps?parent_id={slot['id']}").json()["items"]
    assert [(s["step_id"], s["iteration"], s["parent_id"]) for s in inside] == [
        ("double", 1, slot["id"]),
        ("label", 1, slot["id"]),
    ]
    top = client.get(f"/api/v1/runs/{run.id}/steps?step_id=each&step_type=loop").json()["items"]
    assert [(s["scope"], s["parent_id"], s["output_data"]["total_count"]) for s in top] == [(None, None, 2)]
    assert client.get(f"/api/v1/runs/{run.id}/steps?iteration=1&status=COMPLETED").json()["total"] == 3


def test_a_finished_run_leaves_nothing_active():
    """A failure decided at top level (a step failing after a block) cancels every row still active,
    so neither the deadline sweep nor a retry finds leftovers."""
    run = run_execute(workflow=parallel_workflow(), input_data={}, user=None)
    first = tasks(start(run))
    # A try of another step still waiting at top level (as after a crash between two decisions).
    StepExecution.objects.create(run=run, step_id="after", status=StepStatus.PENDING, attempt=1)
    result(first[0], error="boom")
    assert fresh(run).status == RunStatus.FAILED
    assert not StepExecution.objects.filter(run=run, status__in=["PENDING", "RUNNING"]).exists()
