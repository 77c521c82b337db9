"""The executor's batch: its messages go in groups, one transaction each, and a group that fails is
redone one message at a time; it stays within the consumer's poll interval: what it could not handle
in time is fetched again (the partition is rewound to it) and only what was handled is committed."""

import json
import time
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from kafka.structs import TopicPartition

from runs import executor as executor_module
from runs.choices import RunStatus
from runs.executor import Executor
from runs.models import Run, StepExecution
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_executor import start, tasks

pytestmark = pytest.mark.django_db


class Consumer:
    def __init__(self, batches):
        self.batches = batches
        self.seeks, self.commits = [], []

    def poll(self, timeout_ms, max_records):
        return self.batches

    def seek(self, partition, offset):
        self.seeks.append((partition, offset))

    def commit_async(self, offsets, callback):
        self.commits.append(offsets)


def test_a_slow_batch_stops_at_half_the_poll_interval_and_rewinds_the_rest(monkeypatch, settings):
    settings.KAFKA_MAX_POLL_INTERVAL_MS = 1000  # a batch may take 0.5 s
    clock = [100.0]
    monkeypatch.setattr(executor_module, "time", SimpleNamespace(monotonic=lambda: clock[0], sleep=time.sleep))
    first, second = TopicPartition(settings.KAFKA_RESULTS_TOPIC, 0), TopicPartition(settings.KAFKA_RESULTS_TOPIC, 1)
    records = {p: [SimpleNamespace(offset=10 + i, value=b"{}", headers=[]) for i in range(3)] for p in (first, second)}
    executor = Executor()
    executor.consumer = Consumer(records)
    handled = []

    def handle(topic, raw, headers=None):
        clock[0] += 0.2  # each message takes 0.2 s: the fourth would start after 0.6 s
        handled.append(raw)

    monkeypatch.setattr(executor, "message_handle", handle)

    assert executor.poll_once() == 3
    assert len(handled) == 3
    assert executor.consumer.seeks == [(second, 10)]  # the untouched partition starts again at its first
    assert [{p: meta.offset for p, meta in c.items()} for c in executor.consumer.commits] == [{first: 13}]


def test_a_quick_batch_is_handled_whole(monkeypatch, settings):
    partition = TopicPartition(settings.KAFKA_RESULTS_TOPIC, 0)
    executor = Executor()
    executor.consumer = Consumer({partition: [SimpleNamespace(offset=i, value=b"{}", headers=[]) for i in range(50)]})
    monkeypatch.setattr(executor, "message_handle", lambda topic, raw, headers=None: None)

    assert executor.poll_once() == 50
    assert executor.consumer.seeks == []
    assert executor.consumer.commits[0][partition].offset == 50


def results_of(settings, runs) -> list:
    """A poll of the first step's SUCCESS result of each run, on one partition."""
    values = []
    for run in runs:
        [task] = tasks(start(run))
        message = {**{k: task[k] for k in ("run_id", "task_id", "correlation_id")}, "status": "SUCCESS"}
        values.append(json.dumps({**message, "output_data": {"text": "done"}}).encode())
    return [SimpleNamespace(offset=i, value=value, headers=[]) for i, value in enumerate(values)]


def test_a_polls_results_go_in_one_transaction_with_one_insert_of_their_rows(settings):
    settings.EXECUTOR_GROUP_MAX = 50
    workflow = workflow_with_agents("a")
    runs = [run_execute(workflow=workflow, input_data={"text": "x"}, user=None) for _ in range(4)]
    partition = TopicPartition(settings.KAFKA_RESULTS_TOPIC, 0)
    executor = Executor()
    executor.consumer = Consumer({partition: results_of(settings, runs)})
    with CaptureQueriesContext(connection) as queries:
        assert executor.poll_once() == 4
    sql = [q["sql"] for q in queries.captured_queries]
    assert sum(s.startswith('INSERT INTO "runs_runlog"') for s in sql) == 1  # the four results' logs together
    assert all(Run.objects.get(pk=run.pk).status == RunStatus.COMPLETED for run in runs)
    assert executor.consumer.commits[0][partition].offset == 4


def test_a_group_that_fails_is_redone_one_message_at_a_time_and_only_the_bad_one_is_skipped(monkeypatch, settings):
    workflow = workflow_with_agents("a", "b")
    runs = [run_execute(workflow=workflow, input_data={"text": "x"}, user=None) for _ in range(3)]
    partition = TopicPartition(settings.KAFKA_RESULTS_TOPIC, 0)
    executor = Executor()
    executor.consumer = Consumer({partition: results_of(settings, runs)})
    handle = executor.handlers[settings.KAFKA_RESULTS_TOPIC]

    def flaky(message):
        handle(message)  # its writes are rolled back with the group's
        if message["run_id"] == str(runs[1].id):
            raise RuntimeError("a bug in one message")

    executor.handlers[settings.KAFKA_RESULTS_TOPIC] = flaky
    assert executor.poll_once() == 3
    steps = {run.pk: sorted(StepExecution.objects.filter(run=run).values_list("step_id", flat=True)) for run in runs}
    # The good ones once each (a second step, dispatched once), the bad one as if never handled.
    assert steps == {runs[0].pk: ["s1", "s2"], runs[1].pk: ["s1"], runs[2].pk: ["s1", "s2"]}
    assert executor.consumer.commits[0][partition].offset == 3  # the bad one is skipped, as without groups
