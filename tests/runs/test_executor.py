"""The executor's decisions, message by message, without a broker: what it records and what it would send."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent
from core.db import server_side_binding
from core.models import OutboxMessage
from core.outbox import outbox_relay_pending
from runs.choices import RunStatus, StepStatus
from runs.executor import Executor, overdue_handle
from runs.models import Run, RunLog, StepExecution
from runs.services import run_cancel, run_execute, run_retry
from runs.tasks import runs_recover
from tests.factories import AgentFactory
from tests.runs.helpers import chain, workflow_with_agents
from workflows.services import workflow_create

pytestmark = pytest.mark.django_db
executor = Executor()


def send(topic, message) -> list:
    raw = message if isinstance(message, bytes) else json.dumps(message).encode()
    return executor.handle(topic, raw)


def start(run) -> list:
    request = OutboxMessage.objects.filter(topic=settings.KAFKA_EXECUTION_TOPIC, key=str(run.id)).latest("id")
    return send(settings.KAFKA_EXECUTION_TOPIC, request.payload)


def tasks(messages) -> list[dict]:
    return [m.payload for m in messages if m.topic == settings.KAFKA_TASKS_TOPIC]


def result(task, output=None, error=None, **fields) -> list:
    message = {
        "run_id": task["run_id"],
        "task_id": task["task_id"],
        "correlation_id": task["correlation_id"],
        "status": "FAILURE" if error else "SUCCESS",
        "output_data": None if error else output,
        "error_message": error,
        "timestamp": "2026-11-26T00:00:00Z",
        "duration_ms": 5,
        **fields,
    }
    return send(settings.KAFKA_RESULTS_TOPIC, message)


def fresh(run) -> Run:
    return Run.objects.get(pk=run.pk)


def test_a_chain_runs_step_by_step_and_ends_with_the_last_output():
    workflow = workflow_with_agents("upper", "count")
    run = run_execute(workflow=workflow, input_data={"text": "a b"}, user=None)
    sent = start(run)
    assert fresh(run).status == RunStatus.RUNNING and fresh(run).started_at
    [task] = tasks(sent)
    assert task["agent_name"] == "upper" and task["input_data"] == {"text": "a b"} and task["step_id"] == "s1"
    assert task["task_id"].startswith("task-s1-") and task["correlation_id"].startswith(f"corr-{run.id}-s1-")
    assert task["attempt"] == 1 and task["timeout_ms"] == 30000
    monitoring = [m.payload for m in sent if m.topic == settings.KAFKA_MONITORING_TOPIC]
    assert [(m["step_id"], m["status"]) for m in monitoring] == [("workflow", "RUNNING"), ("s1", "RUNNING")]

    [task2] = tasks(result(task, {"text": "A B"}))
    assert task2["step_id"] == "s2" and task2["input_data"] == {"text": "A B"}
    final = result(task2, {"count": 2, "text": "2"})
    assert not tasks(final)
    run = fresh(run)
    assert run.status == RunStatus.COMPLETED and run.output_data == {"count": 2, "text": "2"} and run.completed_at
    last = [m.payload for m in final if m.topic == settings.KAFKA_MONITORING_TOPIC][-1]
    assert (last["step_id"], last["status"]) == ("workflow", "COMPLETED")
    steps = StepExecution.objects.filter(run=run).order_by("created_at")
    assert [(s.step_id, s.status) for s in steps] == [("s1", "COMPLETED"), ("s2", "COMPLETED")]
    # The step's own span, not the 5 ms the result says the call took (tests/runs/test_step_durations.py).
    assert all(s.duration_ms == int((s.completed_at - s.started_at).total_seconds() * 1000) for s in steps)


def test_a_result_writes_its_logs_events_and_outbox_rows_in_one_round_trip():
    run = run_execute(workflow=workflow_with_agents("a", "b"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    with CaptureQueriesContext(connection) as queries:
        [task2] = tasks(result(task, {"text": "y"}))
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    if server_side_binding(
        connection
    ):  # one statement each, the three in one pipeline (tests/core/test_rows_insert.py)
        tables = [sql.split(" (")[0].removeprefix("INSERT INTO ") for sql in inserts]
        assert tables[0] == '"runs_stepexecution"'
        assert sorted(tables[1:]) == ['"core_outboxmessage"', '"runs_event"', '"runs_runlog"']
    elif connection.vendor == "postgresql":  # the next step's row, then the three tables together
        assert [sql.split(" (")[0] for sql in inserts] == [
            'INSERT INTO "runs_stepexecution"',
            'INSERT INTO "runs_runlog"',
        ]
        assert 'INSERT INTO "runs_event"' in inserts[1] and 'INSERT INTO "core_outboxmessage"' in inserts[1]
    assert task2["step_id"] == "s2"
    assert RunLog.objects.filter(run=run, message="Step 's1' completed").exists()
    assert run.events.filter(type="step.completed").count() == 1


def test_a_run_that_starts_reads_its_row_once_with_its_input():
    run = run_execute(workflow=workflow_with_agents("a", "b"), input_data={"text": "x"}, user=None)
    with CaptureQueriesContext(connection) as queries:
        [task] = tasks(start(run))
    run_reads = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT") and 'FROM "runs_run"' in q["sql"]
    ]
    assert len(run_reads) == 1 and '"input_data"' in run_reads[0]  # the lock; the run.running event needs no more
    assert task["input_data"] == {"text": "x"}
    assert fresh(run).events.filter(type="run.running").get().data["input_data"] == {"text": "x"}


def test_the_agents_task_and_context_ids_are_stored_with_the_results_own_update():
    run = run_execute(workflow=workflow_with_agents("a", "b"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    with CaptureQueriesContext(connection) as queries:
        result(task, {"text": "y"}, agent_task_id="agent-task-1", agent_context_id="agent-ctx-1")
    step_updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "runs_stepexecution"')]
    assert len(step_updates) == 1 and '"agent_task_id"' in step_updates[0]
    step = StepExecution.objects.get(run=run, step_id="s1")
    assert (step.status, step.agent_task_id, step.agent_context_id) == ("COMPLETED", "agent-task-1", "agent-ctx-1")


def test_redelivered_messages_change_nothing():
    run = run_execute(workflow=workflow_with_agents("a", "b"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    assert tasks(start(run)) == []  # the same request again: nothing new is dispatched
    [task2] = tasks(result(task, {"text": "y"}))
    assert tasks(result(task, {"text": "other"})) == []
    assert StepExecution.objects.get(run=run, step_id="s1").output_data == {"text": "y"}
    assert StepExecution.objects.filter(run=run).count() == 2
    assert RunLog.objects.filter(run=run, level="warning", message__contains="ignored").exists()
    assert task2["step_id"] == "s2"


def test_a_failed_step_fails_the_run_and_retry_resumes_at_it():
    run = run_execute(workflow=workflow_with_agents("a", "b", "c"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    [task2] = tasks(result(task, {"text": "from s1"}))
    assert tasks(result(task2, error="Agent returned HTTP 500")) == []
    failed = fresh(run)
    assert failed.status == RunStatus.FAILED
    assert failed.error_message == "Step 's2' failed: Agent returned HTTP 500"

    run_retry(run=failed, user=None)
    [again] = tasks(start(run))
    assert again["step_id"] == "s2" and again["attempt"] == 2 and again["input_data"] == {"text": "from s1"}
    [task3] = tasks(result(again, {"text": "from s2"}))
    result(task3, {"text": "done"})
    run = fresh(run)
    assert run.status == RunStatus.COMPLETED and run.attempt == 2
    s1_calls = StepExecution.objects.filter(run=run, step_id="s1")
    assert s1_calls.count() == 1  # completed in attempt 1, never called again
    assert list(StepExecution.objects.filter(run=run, step_id="s2").values_list("attempt", "status")) == [
        (1, "FAILED"),
        (2, "COMPLETED"),
    ]


def test_a_stale_request_from_an_earlier_attempt_is_ignored():
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    first_request = OutboxMessage.objects.get(topic=settings.KAFKA_EXECUTION_TOPIC).payload
    [task] = tasks(start(run))
    result(task, error="nope")
    run_retry(run=fresh(run), user=None)
    assert tasks(send(settings.KAFKA_EXECUTION_TOPIC, first_request)) == []
    assert fresh(run).status == RunStatus.PENDING


def test_cancel_stops_dispatch_and_late_results_change_nothing():
    run = run_execute(workflow=workflow_with_agents("a", "b"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    run_cancel(run=fresh(run), user=None, reason="stop")
    assert tasks(result(task, {"text": "late"})) == []
    run = fresh(run)
    assert run.status == RunStatus.CANCELLED
    step = StepExecution.objects.get(run=run)
    assert step.status == StepStatus.CANCELLED and step.output_data is None
    late = RunLog.objects.get(run=run, message__contains="ignored")
    assert late.data["output_data"] == {"text": "late"}  # recorded in the log, not on the step


def test_a_cancellation_request_from_another_producer_cancels():
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    start(run)
    message = {"message_type": "cancellation_request", "run_id": str(run.id), "cancelled_by": "old-cli"}
    send(settings.KAFKA_CANCELLATION_TOPIC, message)
    run = fresh(run)
    assert run.status == RunStatus.CANCELLED and run.cancelled_by == "old-cli"


def test_an_agent_deleted_after_saving_fails_the_run_clearly():
    run = run_execute(workflow=workflow_with_agents("gone"), input_data={"text": "x"}, user=None)
    Agent.objects.filter(name="gone").update(status="deleted")
    assert tasks(start(run)) == []
    run = fresh(run)
    assert run.status == RunStatus.FAILED
    assert run.error_message == "Step 's1' failed: Agent 'gone' does not exist (it was deleted)"


def test_an_inactive_agent_fails_the_step():
    run = run_execute(workflow=workflow_with_agents("sleepy"), input_data={"text": "x"}, user=None)
    Agent.objects.filter(name="sleepy").update(status="inactive")
    start(run)
    assert fresh(run).error_message == "Step 's1' failed: Agent 'sleepy' is inactive"


def test_an_unresolvable_reference_fails_the_step_naming_it():
    AgentFactory(name="a")
    definition = chain("a", "a", name="refs")
    definition["steps"]["s2"]["input_mapping"] = {"value": "${s1.output.missing}"}
    run = run_execute(workflow=workflow_create(user=None, definition=definition), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    result(task, {"text": "no missing key"})
    run = fresh(run)
    assert run.status == RunStatus.FAILED
    assert "${s1.output.missing}" in run.error_message and "no key 'missing'" in run.error_message


def test_a_step_that_times_out_is_retried_per_policy_then_fails():
    AgentFactory(
        name="slow", retry_config={"max_retries": 1, "initial_delay_ms": 0, "max_delay_ms": 0, "backoff_multiplier": 2}
    )
    definition = chain("slow", name="timeouts", s1={"timeout_seconds": 2})
    run = run_execute(workflow=workflow_create(user=None, definition=definition), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    assert task["timeout_ms"] == 2000
    StepExecution.objects.filter(run=run).update(due_at=timezone.now() - timedelta(seconds=1))
    overdue_handle([])  # times out try 1, schedules try 2 (no delay)
    overdue_handle([])  # sends try 2
    tries = list(StepExecution.objects.filter(run=run).order_by("try_number").values_list("try_number", "status"))
    assert tries == [(1, "FAILED"), (2, "RUNNING")]
    assert (
        "Timed out: no result from agent 'slow' within 2000 ms" in StepExecution.objects.get(try_number=1).error_message
    )
    assert tasks(result(task, {"text": "late"})) == []  # try 1's late answer is ignored
    assert fresh(run).status == RunStatus.RUNNING

    StepExecution.objects.filter(run=run, try_number=2).update(due_at=timezone.now() - timedelta(seconds=1))
    overdue_handle([])
    run = fresh(run)
    assert run.status == RunStatus.FAILED and "Timed out" in run.error_message


def test_malformed_and_unknown_messages_are_skipped():
    assert send(settings.KAFKA_RESULTS_TOPIC, b"not json") == []
    assert send(settings.KAFKA_RESULTS_TOPIC, b"[1, 2]") == []
    assert send(settings.KAFKA_RESULTS_TOPIC, {"correlation_id": "corr-unknown", "status": "SUCCESS"}) == []
    assert send(settings.KAFKA_EXECUTION_TOPIC, {"run_id": "not-a-uuid"}) == []
    assert send(settings.KAFKA_EXECUTION_TOPIC, {"run_id": "5b0f2d4c-8f57-4a8e-9c43-0f3c2a9d6b11"}) == []
    assert send(settings.KAFKA_CANCELLATION_TOPIC, {}) == []


def test_recovery_requests_runs_whose_lease_expired_again():
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    assert runs_recover() == 0
    OutboxMessage.objects.update(sent_at=timezone.now())  # the first request left (and was lost)
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert runs_recover() == 1
    assert OutboxMessage.objects.filter(topic=settings.KAFKA_EXECUTION_TOPIC, key=str(run.id)).count() == 2
    assert fresh(run).lease_expires_at > timezone.now()
    [task] = tasks(start(run))  # the re-sent request is handled like the first
    assert task["step_id"] == "s1"


def test_without_kafka_the_outbox_keeps_messages_and_backs_off(settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = []
    run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    assert outbox_relay_pending() == 0
    pending = OutboxMessage.objects.filter(sent_at__isnull=True)
    assert pending.count() == 1  # the execution request
    message = pending.first()
    assert message.attempts == 1 and "KAFKA_BOOTSTRAP_SERVERS" in message.last_error
    assert message.next_attempt_at > timezone.now()
    assert outbox_relay_pending() == 0 and pending.first().attempts == 1  # not due yet


def test_recovery_waits_for_a_request_still_in_the_outbox_and_backs_off():
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    expire = lambda: Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))  # noqa: E731
    expire()
    assert runs_recover() == 0  # Kafka is away: the outbox still holds the request, it will send it
    assert OutboxMessage.objects.filter(topic=settings.KAFKA_EXECUTION_TOPIC).count() == 1
    OutboxMessage.objects.update(sent_at=timezone.now())
    leases = []
    for _ in range(3):
        expire()
        assert runs_recover() == 1
        OutboxMessage.objects.update(sent_at=timezone.now())
        leases.append((fresh(run).lease_expires_at - timezone.now()).total_seconds())
    lease = settings.EXECUTOR_LEASE_SECONDS
    assert [round(s / lease) for s in leases] == [2, 4, 8]  # doubling, up to an hour
    assert fresh(run).recoveries == 3
    start(run)  # it moves: the count starts again
    assert fresh(run).recoveries == 0


def test_a_clean_stop_commits_only_the_partitions_still_owned():
    from kafka.structs import OffsetAndMetadata, TopicPartition

    class Consumer:
        committed = None

        def assignment(self):
            return {TopicPartition("results.topic", 0)}

        def commit(self, offsets):
            self.committed = offsets

    mine, theirs = TopicPartition("results.topic", 0), TopicPartition("results.topic", 1)
    stopping = Executor()
    stopping.consumer = Consumer()
    stopping.last_offsets = {mine: OffsetAndMetadata(5, "", -1), theirs: OffsetAndMetadata(9, "", -1)}
    stopping.final_commit()
    assert stopping.consumer.committed == {mine: OffsetAndMetadata(5, "", -1)}


def test_rows_a_writer_relays_itself_are_left_to_it_for_longer_than_a_send_can_take(settings):
    """Before: a 5 s grace, shorter than a send to a slow broker may take (3 x the send timeout), so
    the sweep could send the executor's rows a second time while the executor was still sending them."""
    settings.KAFKA_SEND_TIMEOUT_SECONDS = 10
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    before = timezone.now()
    sent = start(run)
    task_row = next(m for m in sent if m.topic == settings.KAFKA_TASKS_TOPIC)
    assert task_row.next_attempt_at >= before + timedelta(seconds=30)


def test_a_starting_run_has_its_input_and_output_in_its_event():
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "big"}, user=None)
    start(run)  # read with the run's lock (test_a_run_that_starts_reads_its_row_once_with_its_input)
    event = run.events.get(type="run.running")
    assert event.data["input_data"] == {"text": "big"} and event.data["output_data"] is None
    assert event.data["status"] == "RUNNING" and event.data["started_at"]
