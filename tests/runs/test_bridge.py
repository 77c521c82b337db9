"""The bridge's bookkeeping: a task is finished (its offset may be committed) whatever its outcome."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from kafka.structs import TopicPartition

from agents.agent_http import AgentClient
from core.kafka import OffsetTracker
from core.models import OutboxMessage
from runs.bridge import Bridge
from runs.executor import Executor
from runs.models import StepExecution
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents


def test_offsets_are_committed_below_the_oldest_task_in_flight():
    tracker, partition = OffsetTracker(), TopicPartition("tasks", 0)
    for offset in (10, 11, 12):
        tracker.add(partition, offset)
    tracker.done(partition, 11)
    assert tracker.committable()[partition].offset == 10
    tracker.done(partition, 10)
    offsets = tracker.committable()
    assert offsets[partition].offset == 12
    tracker.mark_committed(offsets)
    assert tracker.committable() == {}
    tracker.done(partition, 12)
    assert tracker.committable()[partition].offset == 13


@pytest.mark.django_db(transaction=True)
def test_a_task_whose_step_was_cancelled_is_skipped_and_done():
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    StepExecution.objects.create(run=run, step_id="s1", agent_name="a", status="CANCELLED", correlation_id="corr-c")
    bridge, partition = Bridge(), TopicPartition("tasks", 0)
    bridge.tracker.add(partition, 5)
    task = {"run_id": str(run.id), "task_id": "task-s1", "agent_name": "a", "correlation_id": "corr-c"}

    async def go():
        async with AgentClient() as client:
            await bridge.process(client, partition, 5, task)

    asyncio.run(go())  # no agent call and no result to publish: nothing listens on 127.0.0.1:1 or Kafka
    assert bridge.tracker.committable()[partition].offset == 6


def process_once(task: dict, *, offset: int) -> tuple[Bridge, TopicPartition, list]:
    """One task through a new bridge's `process`; returns the bridge, the partition and what it published."""
    bridge, partition, published = Bridge(), TopicPartition("tasks", 0), []

    async def publish(message):
        published.append(message)

    bridge.publish = publish

    async def go():
        async with AgentClient() as client:
            await bridge.process(client, partition, offset, task)

    bridge.tracker.add(partition, offset)
    asyncio.run(go())
    return bridge, partition, published


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fault", ["database", "bug"])
def test_whatever_process_raises_the_slot_is_released_and_a_failure_published(monkeypatch, fault):
    """Before: the offset stayed in flight for good (the partition's commits stuck behind it) and
    the step only learnt at its deadline."""
    from django.db import OperationalError

    from runs import bridge as bridge_module

    def broken(task):
        raise OperationalError("the database went away") if fault == "database" else KeyError("agent_name")

    monkeypatch.setattr(bridge_module, "task_prepare", broken)
    monkeypatch.setattr(bridge_module, "DB_TRIES", 2)  # a database that stays away
    task = {"run_id": "r", "task_id": "task-s1-1", "agent_name": "a", "correlation_id": "corr-r-s1-1"}
    bridge, partition, published = process_once(task, offset=7)
    assert bridge.tracker.committable()[partition].offset == 8
    [message] = published
    assert message["status"] == "FAILURE" and message["correlation_id"] == "corr-r-s1-1"
    assert message["error_message"].startswith("The bridge could not handle the task: ")
    assert ("OperationalError: the database went away" if fault == "database" else "KeyError") in message[
        "error_message"
    ]


@pytest.mark.django_db(transaction=True)
def test_a_task_picked_up_after_its_deadline_is_not_called():

    run = run_execute(workflow=workflow_with_agents("late"), input_data={"text": "x"}, user=None)

    request = OutboxMessage.objects.get(topic=settings.KAFKA_EXECUTION_TOPIC)

    sent = Executor().handle(settings.KAFKA_EXECUTION_TOPIC, json.dumps(request.payload).encode())
    [task] = [m.payload for m in sent if m.topic == settings.KAFKA_TASKS_TOPIC]
    step = StepExecution.objects.get(run=run)
    expected = step.started_at + timedelta(milliseconds=step.timeout_ms)
    assert datetime.fromisoformat(task["deadline"].replace("Z", "+00:00")) == expected
    task["deadline"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    # Nothing listens at the agent's URL: a call would be an error of another kind.
    bridge, partition, published = process_once(task, offset=3)
    [message] = published
    assert message["status"] == "FAILURE" and "picked up after its deadline" in message["error_message"]


@pytest.mark.django_db(transaction=True)
def test_a_database_away_for_a_moment_is_waited_for_not_reported_as_a_failure(monkeypatch):
    """Before: a cut connection failed the step at once ("The bridge could not handle the task:
    OperationalError ..."), and the executor does not retry FAILURE results, so the run failed."""
    from django.db import OperationalError

    from runs import bridge as bridge_module

    tries = []

    def flaky(task):
        tries.append(1)
        if len(tries) < 3:
            raise OperationalError("terminating connection due to administrator command")
        return bridge_module.Prepared(skip="step is CANCELLED", known=True)

    monkeypatch.setattr(bridge_module, "task_prepare", flaky)
    task = {"run_id": "r", "task_id": "task-s1-1", "agent_name": "a", "correlation_id": "corr-r-s1-1"}
    bridge, partition, published = process_once(task, offset=3)
    assert len(tries) == 3 and published == []
    assert bridge.tracker.committable()[partition].offset == 4
