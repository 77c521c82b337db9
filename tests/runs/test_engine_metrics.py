"""Engine metrics on /metrics: runs by status, step durations per agent, the outbox backlog, consumer
lag; read at scrape time (cached a few seconds) or counted in the shared store as changes commit."""

import json
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from core.models import OutboxMessage
from runs import metrics
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_executor import fresh, result, start, tasks

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
DASHBOARD = Path(__file__).resolve().parents[2] / "docker" / "grafana-dashboard.json"


def scrape(anon) -> dict:
    """{(sample name, labels as a sorted tuple): value} of one /metrics answer."""
    response = anon.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def fresh_reads(settings):
    settings.ENGINE_METRICS_CACHE_SECONDS = 0  # every scrape reads again
    cache.delete(metrics.SNAPSHOT_KEY)


@pytest.mark.django_db(transaction=True)  # the counters move after the commit
def test_runs_status_changes_and_step_durations_follow_the_engine(anon, fresh_reads):
    before = scrape(anon)
    run = run_execute(workflow=workflow_with_agents("metered"), input_data={"text": "x"}, user=None)
    pending = scrape(anon)
    assert value(pending, "wfplatform_runs", status="PENDING") == value(before, "wfplatform_runs", status="PENDING") + 1
    [task] = tasks(start(run))
    running = scrape(anon)
    assert value(running, "wfplatform_runs", status="RUNNING") == value(before, "wfplatform_runs", status="RUNNING") + 1
    assert value(running, "wfplatform_runs", status="PENDING") == value(before, "wfplatform_runs", status="PENDING")

    result(task, {"text": "done"})
    done = scrape(anon)
    assert fresh(run).status == "COMPLETED"
    for status in ("PENDING", "RUNNING", "COMPLETED"):
        name = "wfplatform_run_status_changes_total"
        assert value(done, name, status=status) == value(before, name, status=status) + 1, status
    name = "wfplatform_step_status_changes_total"
    assert value(done, name, status="COMPLETED") == value(before, name, status="COMPLETED") + 1
    assert value(done, "wfplatform_runs", status="RUNNING") == value(before, "wfplatform_runs", status="RUNNING")

    duration = fresh(run).steps.get().duration_ms / 1000
    count = "wfplatform_step_duration_seconds_count"
    assert value(done, count, agent="metered") == value(before, count, agent="metered") + 1
    total = "wfplatform_step_duration_seconds_sum"
    assert value(done, total, agent="metered") - value(before, total, agent="metered") == pytest.approx(duration)
    bucket = "wfplatform_step_duration_seconds_bucket"
    first = next(str(b) for b in metrics.BUCKETS if b >= duration)
    assert value(done, bucket, agent="metered", le=first) == value(before, bucket, agent="metered", le=first) + 1
    assert value(done, bucket, agent="metered", le="+Inf") == value(done, count, agent="metered")


@pytest.mark.django_db
def test_the_outbox_backlog_counts_pending_and_dead_rows_and_the_oldest_age(anon, fresh_reads):
    OutboxMessage.objects.all().delete()
    assert value(scrape(anon), "wfplatform_outbox_oldest_pending_age_seconds") == 0
    now = timezone.now()
    rows = [OutboxMessage(topic="t", key=str(n), payload={}, next_attempt_at=now) for n in range(3)]
    OutboxMessage.objects.bulk_create(rows)
    OutboxMessage.objects.filter(key="0").update(created_at=now - timedelta(minutes=10))
    OutboxMessage.objects.filter(key="1").update(dead_at=now, created_at=now - timedelta(hours=5))  # not "pending"
    OutboxMessage.objects.create(topic="t", key="sent", payload={}, next_attempt_at=now, sent_at=now)
    samples = scrape(anon)
    assert value(samples, "wfplatform_outbox_pending") == 2
    assert value(samples, "wfplatform_outbox_dead") == 1
    assert 600 <= value(samples, "wfplatform_outbox_oldest_pending_age_seconds") < 700


@pytest.mark.django_db
def test_a_scrape_is_kept_in_the_shared_cache_for_a_few_seconds(anon, settings):
    settings.ENGINE_METRICS_CACHE_SECONDS = 5
    cache.delete(metrics.SNAPSHOT_KEY)
    with CaptureQueriesContext(connection) as first:
        scrape(anon)
    with CaptureQueriesContext(connection) as second:
        samples = scrape(anon)
    engine = [q["sql"] for q in first.captured_queries if "runs_run" in q["sql"] or "core_outboxmessage" in q["sql"]]
    assert len(engine) == 2  # one per table: active runs, outbox backlog
    engine = [q["sql"] for q in second.captured_queries if "runs_run" in q["sql"] or "core_outboxmessage" in q["sql"]]
    assert engine == []
    assert value(samples, "wfplatform_engine_metrics_up") == 1


@pytest.mark.django_db
def test_the_queries_are_cheap_active_runs_only_and_the_outbox_partial_index(anon, fresh_reads):
    with CaptureQueriesContext(connection) as queries:
        scrape(anon)
    [runs_query] = [q["sql"] for q in queries.captured_queries if "runs_run" in q["sql"]]
    assert "IN ('PENDING', 'RUNNING')" in runs_query.replace('"', "'") or "IN (%s, %s)" in runs_query
    [outbox_query] = [q["sql"] for q in queries.captured_queries if "core_outboxmessage" in q["sql"]]
    assert '"sent_at" IS NULL' in outbox_query  # the condition of outbox_pending_idx


@pytest.mark.django_db
def test_with_kafka_away_the_lag_is_skipped_quickly(anon, fresh_reads, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]
    started = time.monotonic()
    samples = scrape(anon)
    assert time.monotonic() - started < 3
    assert value(samples, "wfplatform_kafka_lag_up") == 0
    assert not [key for key in samples if key[0] == "wfplatform_kafka_consumer_lag"]
    assert value(samples, "wfplatform_outbox_pending") >= 0 and value(samples, "wfplatform_engine_metrics_up") == 1


@pytest.mark.slow
@pytest.mark.django_db
def test_consumer_lag_is_end_offsets_minus_committed_per_group_and_topic(anon, fresh_reads, settings):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import OffsetAndMetadata, TopicPartition

    from core import kafka
    from tests.runs.test_broker_loss import Broker

    broker = Broker().start()
    try:
        settings.KAFKA_BOOTSTRAP_SERVERS = [broker.address]
        settings.KAFKA_TOPIC_PARTITIONS = 1
        kafka.topics_ensure([settings.KAFKA_TASKS_TOPIC, settings.KAFKA_RESULTS_TOPIC])
        producer = KafkaProducer(bootstrap_servers=[broker.address])
        for _ in range(5):
            producer.send(settings.KAFKA_TASKS_TOPIC, b"{}", partition=0).get(5)
        producer.send(settings.KAFKA_RESULTS_TOPIC, b"{}", partition=0).get(5)
        producer.close()
        committer = KafkaConsumer(bootstrap_servers=[broker.address], group_id=settings.KAFKA_BRIDGE_GROUP)
        committer.commit({TopicPartition(settings.KAFKA_TASKS_TOPIC, 0): OffsetAndMetadata(2, "", -1)})
        committer.close()
        samples = scrape(anon)
    finally:
        broker.stop()
    lag = "wfplatform_kafka_consumer_lag"
    assert value(samples, "wfplatform_kafka_lag_up") == 1
    assert value(samples, lag, group=settings.KAFKA_BRIDGE_GROUP, topic=settings.KAFKA_TASKS_TOPIC) == 3
    # The executor's group never committed: all of the results topic is its lag.
    assert value(samples, lag, group=settings.KAFKA_EXECUTOR_GROUP, topic=settings.KAFKA_RESULTS_TOPIC) == 1


def test_the_collector_is_registered_once():
    from django.apps import apps

    apps.get_app_config("runs").ready()  # a second ready() (tests, reloads) adds nothing
    engine = [c for c in REGISTRY._collector_to_names if isinstance(c, metrics.EngineCollector)]
    assert len(engine) == 1


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_queries_only_metrics_that_exist(anon, fresh_reads):
    run = run_execute(workflow=workflow_with_agents("dash"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    result(task, {"text": "y"})  # a step duration, so its histogram has samples
    text = anon.get("/metrics").content.decode()
    emitted = set()
    for family in text_string_to_metric_families(text):
        # Declared (# TYPE) counts too: the lag has no samples while Kafka is not there, as in this test.
        emitted |= {sample.name for sample in family.samples}
        emitted |= {f"{family.name}{suffix}" for suffix in SUFFIXES.get(family.type, ("",))}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 8
    used = {name for expr in exprs for name in re.findall(r"\b((?:wfplatform|django)_[a-z0-9_]+)", expr)}
    assert used and not used - emitted, used - emitted
    assert {"wfplatform_runs", "wfplatform_step_duration_seconds_bucket", "wfplatform_kafka_consumer_lag"} <= used


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_messages_adds_its_counts_to_the_store_in_one_pass(anon, fresh_reads, monkeypatch):
    """The executor handles a poll's messages inside counters_batched(): before, each commit read and
    wrote every counter it moved in the store (a tenth of the executor's time with the file cache)."""
    runs = [
        run_execute(
            workflow=workflow_with_agents(f"batched{i}", name=f"batched{i}"), input_data={"text": "x"}, user=None
        )
        for i in range(3)
    ]
    dispatched = [tasks(start(run))[0] for run in runs]
    before = scrape(anon)
    added = []
    real = metrics.cache.incr

    def incr(key, delta=1):
        total = real(key, delta)  # raises for a counter's first time (then it is added and incremented)
        added.append(key)
        return total

    monkeypatch.setattr(metrics.cache, "incr", incr)
    with metrics.counters_batched():
        for task in dispatched:
            result(task, {"text": "done"})
        assert added == []  # nothing yet: the batch goes in one pass at its end
    # Once per counter moved: the run and step COMPLETED counts, and per agent its bucket, sum and count
    # (each commit alone would have moved the first two once per run).
    assert len(added) == len(set(added)) == 2 + 3 * 3
    after = scrape(anon)
    name = "wfplatform_run_status_changes_total"
    assert value(after, name, status="COMPLETED") == value(before, name, status="COMPLETED") + 3
    count = "wfplatform_step_duration_seconds_count"
    assert all(
        value(after, count, agent=f"batched{i}") == value(before, count, agent=f"batched{i}") + 1 for i in range(3)
    )
