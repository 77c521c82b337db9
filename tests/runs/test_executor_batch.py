"""The executor's batch stays within the consumer's poll interval: what it could not handle in time is
fetched again (the partition is rewound to it) and only what was handled is committed."""

import time
from types import SimpleNamespace

from kafka.structs import TopicPartition

from runs import executor as executor_module
from runs.executor import Executor


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
        return []

    monkeypatch.setattr(executor, "handle", handle)

    assert executor.poll_once() == 3
    assert len(handled) == 3
    assert executor.consumer.seeks == [(second, 10)]  # the untouched partition starts again at its first
    assert [{p: meta.offset for p, meta in c.items()} for c in executor.consumer.commits] == [{first: 13}]


def test_a_quick_batch_is_handled_whole(monkeypatch, settings):
    partition = TopicPartition(settings.KAFKA_RESULTS_TOPIC, 0)
    executor = Executor()
    executor.consumer = Consumer({partition: [SimpleNamespace(offset=i, value=b"{}", headers=[]) for i in range(50)]})
    monkeypatch.setattr(executor, "handle", lambda topic, raw, headers=None: [])

    assert executor.poll_once() == 50
    assert executor.consumer.seeks == []
    assert executor.consumer.commits[0][partition].offset == 50
