"""A step's `duration_ms` is the span of its own timestamps, for every step type and however it ended.

Before: an agent step's duration was the bridge's call time (the result's `duration_ms`) while its
`started_at` / `completed_at` are the executor's (dispatch to result recorded), and steps that timed
out, were cancelled, skipped or failed at dispatch had none at all.
"""

import time
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from agents.models import Agent
from runs.choices import RunStatus
from runs.executor import overdue_handle
from runs.services import run_cancel, run_execute
from tests.factories import AgentFactory
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_blocks import agent, drive, workflow
from tests.runs.test_executor import fresh, start, tasks

pytestmark = pytest.mark.django_db
NO_RETRY = {"max_retries": 0, "initial_delay_ms": 0, "max_delay_ms": 0, "backoff_multiplier": 2}


def slow_echo(task):
    """Answers after 30 ms; the result still says the call took 5 ms (tests/runs/test_executor.py)."""
    time.sleep(0.03)
    return {**task["input_data"], "step": task["step_id"]}, None


def steps_of(client, run) -> list[dict]:
    body = client.get(f"/api/v1/runs/{run.id}/steps", {"page_size": 100}).json()
    assert body["total"] == len(body["items"]), body
    return body["items"]


def span_ms(step: dict) -> float | None:
    if step["started_at"] is None or step["completed_at"] is None:
        return None
    started, completed = (
        datetime.fromisoformat(step[key].replace("Z", "+00:00")) for key in ("started_at", "completed_at")
    )
    return (completed - started).total_seconds() * 1000


def assert_durations_agree(steps: list[dict]) -> None:
    for step in steps:
        span = span_ms(step)
        where = (step["step_id"], step["step_type"], step["status"], step["iteration"], step["branch"])
        if span is None:
            assert step["duration_ms"] is None, where
        else:
            assert step["duration_ms"] is not None and abs(step["duration_ms"] - span) <= 2, (where, step, span)


def test_every_step_type_of_a_completed_run(viewer):
    steps = {
        "first": agent("first", next_step="check"),
        "check": {
            "id": "check",
            "type": "conditional",
            "condition": {"expression": "${workflow.input.score} >= 0.8"},
            "if_true_step": "fan",
            "if_false_step": "never",
            "next_step": "each",
        },
        "fan": {
            "id": "fan",
            "type": "fork_join",
            "fork_join_config": {"branches": {"left": {"steps": ["l1"]}, "right": {"steps": ["r1"]}}},
        },
        "l1": agent("l1"),
        "r1": agent("r1"),
        "never": agent("never"),
        "each": {
            "id": "each",
            "type": "loop",
            "loop_config": {"collection": "${workflow.input.items}", "loop_body": ["double"]},
            "next_step": "both",
        },
        "double": agent("double", input={"value": "${loop.item}"}),
        "both": {"id": "both", "type": "parallel", "parallel_steps": ["a", "b"]},
        "a": agent("a"),
        "b": agent("b"),
    }
    run = run_execute(
        workflow=workflow(steps, "first", name="durations"), input_data={"score": 0.9, "items": [1, 2]}, user=None
    )
    drive(run, slow_echo)
    assert fresh(run).status == RunStatus.COMPLETED, fresh(run).error_message
    found = steps_of(viewer, run)
    kinds = {(s["step_type"], s["status"]) for s in found}
    assert kinds >= {
        ("agent", "COMPLETED"),
        ("agent", "SKIPPED"),
        ("conditional", "COMPLETED"),
        ("fork_join", "COMPLETED"),
        ("branch", "COMPLETED"),
        ("loop", "COMPLETED"),
        ("iteration", "COMPLETED"),
        ("parallel", "COMPLETED"),
    }, kinds
    assert_durations_agree(found)
    # The agent took its 30 ms between dispatch and result, not the 5 ms the result claims.
    assert all(s["duration_ms"] >= 30 for s in found if s["step_type"] == "agent" and s["status"] == "COMPLETED")


def test_steps_that_timed_out_were_cancelled_or_failed_at_dispatch(viewer):
    AgentFactory(name="slow", retry_config=NO_RETRY)
    steps = {
        "both": {"id": "both", "type": "parallel", "parallel_steps": ["a", "b"]},
        "a": agent("a", "slow"),
        "b": agent("b", "slow"),
    }
    timed_out = run_execute(workflow=workflow(steps, "both", name="times-out"), input_data={}, user=None)
    assert len(tasks(start(timed_out))) == 2
    time.sleep(0.02)
    timed_out.steps.filter(step_id="a").update(due_at=timezone.now() - timedelta(seconds=1))
    overdue_handle([])  # a times out (no retry): the parallel fails and b is cancelled
    assert fresh(timed_out).status == RunStatus.FAILED

    cancelled = run_execute(workflow=workflow_with_agents("busy"), input_data={"text": "x"}, user=None)
    start(cancelled)
    time.sleep(0.02)
    run_cancel(run=fresh(cancelled), user=None)

    gone = run_execute(workflow=workflow_with_agents("gone", name="gone"), input_data={"text": "x"}, user=None)
    Agent.objects.filter(name="gone").update(status="deleted")
    start(gone)

    statuses = set()
    for run in (timed_out, cancelled, gone):
        found = steps_of(viewer, run)
        statuses |= {(s["step_type"], s["status"]) for s in found}
        assert_durations_agree(found)
        assert all(s["duration_ms"] is not None for s in found), found  # each of them started
    assert statuses == {
        ("agent", "FAILED"),
        ("agent", "CANCELLED"),
        ("parallel", "FAILED"),
    }, statuses
