"""Poison messages and values, stale requests, one bad run in the deadline pass: the engine goes on
and every run ends. Each test fails on the engine before these fixes."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import DataError, OperationalError
from django.utils import timezone

from core.models import OutboxMessage
from runs import decider as decider_module
from runs.choices import RunStatus, StepStatus
from runs.executor import Executor, overdue_handle, transient
from runs.models import StepExecution
from runs.services import run_cancel, run_execute, run_retry
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_executor import fresh, result, send, start, tasks

pytestmark = pytest.mark.django_db


def test_nul_characters_in_an_agent_answer_are_kept_escaped_and_the_run_goes_on():
    run = run_execute(workflow=workflow_with_agents("a", "b"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    [task2] = tasks(result(task, {"text": "nul\x00here", "k\x00": ["\x00"]}))
    assert task2["input_data"] == {"text": "nul\\u0000here"}
    assert StepExecution.objects.get(run=run, step_id="s1").output_data == {
        "text": "nul\\u0000here",
        "k\\u0000": ["\\u0000"],
    }
    result(task2, error="broken\x00answer")
    run = fresh(run)
    assert run.status == RunStatus.FAILED and "broken\\u0000answer" in run.error_message


def test_a_duration_too_big_for_its_column_is_replaced_by_ours():
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    message = {
        "run_id": task["run_id"],
        "task_id": task["task_id"],
        "correlation_id": task["correlation_id"],
        "status": "SUCCESS",
        "output_data": {"ok": True},
        "duration_ms": 10**15,
    }
    send(settings.KAFKA_RESULTS_TOPIC, message)
    step = StepExecution.objects.get(run=run, step_id="s1")
    assert step.status == StepStatus.COMPLETED and 0 <= step.duration_ms < 60_000
    assert fresh(run).status == RunStatus.COMPLETED


def test_a_result_the_database_refuses_fails_its_step_with_the_reason(monkeypatch):
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    original = decider_module.Decider.result_record
    calls = []

    def refuse_once(self, execution, message):
        calls.append(message["status"])
        if len(calls) == 1:
            raise DataError("value too long for type character varying(255)")
        return original(self, execution, message)

    monkeypatch.setattr(decider_module.Decider, "result_record", refuse_once)
    result(task, {"ok": True})  # handled: no exception, so the offset moves on
    assert calls == ["SUCCESS", "FAILURE"]
    run = fresh(run)
    assert run.status == RunStatus.FAILED
    assert "The agent's result could not be stored: DataError: value too long" in run.error_message


def test_a_passing_database_error_is_raised_for_a_retry_and_classified():
    assert transient(OperationalError("server closed the connection unexpectedly"))
    assert not transient(DataError("invalid byte sequence"))
    executor = Executor()
    original = executor.handlers[settings.KAFKA_EXECUTION_TOPIC]

    def down(message):
        raise OperationalError("connection refused")

    executor.handlers[settings.KAFKA_EXECUTION_TOPIC] = down
    with pytest.raises(OperationalError):
        executor.handle(settings.KAFKA_EXECUTION_TOPIC, json.dumps({"run_id": "x"}).encode())
    executor.handlers[settings.KAFKA_EXECUTION_TOPIC] = original


def test_a_stale_cancellation_request_does_not_cancel_the_retried_attempt():
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    start(run)
    run_cancel(run=fresh(run), user=None)
    stale = OutboxMessage.objects.filter(topic=settings.KAFKA_CANCELLATION_TOPIC).latest("id").payload
    assert stale["attempt"] == 1
    run_retry(run=fresh(run), user=None)
    [task] = tasks(start(run))
    send(settings.KAFKA_CANCELLATION_TOPIC, stale)  # arrives late, after the retry
    assert fresh(run).status == RunStatus.RUNNING
    result(task, {"done": True})
    assert fresh(run).status == RunStatus.COMPLETED


def test_one_run_that_cannot_be_handled_does_not_stop_the_deadline_pass(monkeypatch):
    bad = run_execute(workflow=workflow_with_agents("bad", name="bad"), input_data={"text": "x"}, user=None)
    good = run_execute(workflow=workflow_with_agents("good", name="good"), input_data={"text": "x"}, user=None)
    start(bad)
    start(good)
    StepExecution.objects.update(due_at=timezone.now() - timedelta(seconds=1))
    original = decider_module.Decider.overdue_handle

    def broken_for_bad(self, now):
        if self.run.id == bad.id:
            raise ValueError("a bug in one run's plan")
        return original(self, now)

    monkeypatch.setattr(decider_module.Decider, "overdue_handle", broken_for_bad)
    overdue_handle([])
    # The good run was handled: its try timed out and a retry is scheduled.
    assert StepExecution.objects.filter(run=good, try_number=2, status=StepStatus.PENDING).exists()
    assert fresh(bad).status == RunStatus.RUNNING  # not yet: a bug may be passing
    overdue_handle([])
    overdue_handle([])
    bad = fresh(bad)
    assert bad.status == RunStatus.FAILED
    assert bad.error_message == "The executor could not handle this run: ValueError: a bug in one run's plan"
    assert not StepExecution.objects.filter(run=bad, status__in=["PENDING", "RUNNING"]).exists()
