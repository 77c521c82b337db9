"""Messages Kafka will not take: an answer too large for a result, a task or a request that never
goes. Each ends what waits for it with the reason; nothing holds a slot or waits for a deadline."""

import asyncio

import pytest
from django.conf import settings
from kafka.errors import MessageSizeTooLargeError

from core import kafka
from core.models import OutboxMessage
from core.outbox import outbox_relay
from runs.bridge import Bridge
from runs.choices import RunStatus, StepStatus
from runs.models import StepExecution
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_executor import fresh, start, tasks

pytestmark = pytest.mark.django_db


class Future:
    """An acknowledged send: waited on with get() (the outbox) or through its callbacks (the bridge)."""

    def get(self, timeout=None):
        return None

    def add_callback(self, callback):
        callback(None)
        return self

    def add_errback(self, errback):
        return self


class Producer:
    """Refuses any message larger than `limit` bytes, as kafka-python does over max_request_size."""

    def __init__(self, limit: int):
        self.limit, self.sent = limit, []

    def send(self, topic, key=None, value=None):
        size = len(kafka.encode(value))
        if size > self.limit:
            raise MessageSizeTooLargeError(f"The message is {size} bytes when serialized")
        self.sent.append((topic, value))
        return Future()

    def flush(self, timeout=None):
        pass


@pytest.fixture
def producer(monkeypatch):
    fake = Producer(limit=20_000)
    monkeypatch.setattr(kafka, "producer", lambda: fake)
    monkeypatch.setattr(kafka, "producer_reset", lambda: None)
    return fake


def test_an_answer_too_large_for_kafka_is_published_as_a_failure_that_says_so(producer):
    answer = {"run_id": "r", "task_id": "t", "correlation_id": "c", "status": "SUCCESS"}
    answer["output_data"] = {"text": "x" * 50_000}
    asyncio.run(asyncio.wait_for(Bridge().publish(answer), 5))  # before: retried forever, slot held
    [(topic, sent)] = producer.sent
    assert topic == settings.KAFKA_RESULTS_TOPIC and sent["status"] == "FAILURE" and sent["output_data"] is None
    error = sent["error_message"]
    assert "too large to send over Kafka" in error and "KAFKA_MAX_MESSAGE_BYTES" in error


def test_a_task_too_large_for_kafka_fails_its_step_with_the_reason(producer):
    workflow = workflow_with_agents("a", "b")
    run = run_execute(workflow=workflow, input_data={"text": "x" * 30_000}, user=None)
    sent = start(run)
    assert tasks(sent)
    outbox_relay(sent)  # the executor's relay after its commit: the task does not fit
    row = OutboxMessage.objects.get(topic=settings.KAFKA_TASKS_TOPIC)
    assert row.dead_at is not None and "MessageSizeTooLargeError" in row.last_error
    step = StepExecution.objects.get(run=run, step_id="s1")
    assert step.status == StepStatus.FAILED
    assert step.error_message.startswith("The agent task could not be sent to Kafka: MessageSizeTooLargeError")
    run = fresh(run)
    assert run.status == RunStatus.FAILED and "could not be sent to Kafka" in run.error_message


def test_an_execution_request_too_large_for_kafka_fails_its_run(producer):
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x" * 30_000}, user=None)
    request = OutboxMessage.objects.get(topic=settings.KAFKA_EXECUTION_TOPIC, key=str(run.id))
    outbox_relay([request])
    run = fresh(run)
    assert run.status == RunStatus.FAILED
    assert run.error_message.startswith("The execution request could not be sent to Kafka: MessageSizeTooLargeError")
    assert not StepExecution.objects.filter(run=run).exists()


def test_a_dead_request_for_a_run_that_started_anyway_changes_nothing(producer):
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x" * 30_000}, user=None)
    request = OutboxMessage.objects.get(topic=settings.KAFKA_EXECUTION_TOPIC, key=str(run.id))
    start(run)  # the first request went; this row is a later nudge
    outbox_relay([request])
    assert fresh(run).status == RunStatus.RUNNING
