"""Engine metrics on the web process's /metrics: runs, steps, the outbox, Kafka consumer lag.

The executor and the bridge are other processes, so nothing here lives in one process's memory:

- What changes (run and step status changes, step durations per agent) is counted in the shared store
  (the cache: Redis in production) by whichever process commits the change, through the events sink:
  every run and step status change is an event, written in the transaction of the change, and the
  counters move only after that transaction commits. Counters start again from zero if the store is
  flushed; Prometheus's rate() takes that as a counter reset.
- What is (runs PENDING / RUNNING now, the outbox backlog, consumer lag) is read at scrape time with
  cheap queries: only active runs are counted (few, and found through the status index; never a
  count of the millions of finished runs), the outbox's pending rows through its partial index.

A scrape's answer is kept in the shared cache for ENGINE_METRICS_CACHE_SECONDS, so many scrapers
(or web workers) cost the database and the broker one read per period.
"""

import bisect
import contextlib
import contextvars
import hashlib
import logging
import socket
import time
from collections import Counter

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from core.models import OutboxMessage
from runs.choices import ACTIVE_RUN, RunStatus, StepStatus
from runs.events import STEP_EVENT_TYPES
from runs.models import Run

log = logging.getLogger(__name__)

SNAPSHOT_KEY = "metrics:engine:snapshot"
COUNTER_PREFIX = "metrics:engine:n:"
AGENTS_KEY = "metrics:engine:agents"  # {digest: agent name} of the agents with a duration histogram
AGENTS_RECHECK_SECONDS = 60
# Step durations in seconds: agent calls take from milliseconds to minutes.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
LAG_TIMEOUT_MS = 2000
FINISHED_STEP = (StepStatus.COMPLETED, StepStatus.FAILED)
STEP_STATUSES = [str(status) for status in STEP_EVENT_TYPES]  # those with events (not PENDING)

_agents_seen: dict[str, float] = {}  # digest -> when this process last made sure the registry has it
# Inside counters_batched(): the deltas of the block's commits, added to the store once at its end.
_batch: contextvars.ContextVar[tuple[Counter, dict] | None] = contextvars.ContextVar("metrics_batch", default=None)


# --- counting, in the process that commits the change ---------------------------------------------------


def _digest(agent: str) -> str:
    # Agent names go into cache keys as digests: any character, any length.
    return hashlib.sha1(agent.encode(), usedforsecurity=False).hexdigest()[:16]


def events_count(events) -> None:
    """The events sink: counts run and step status changes and step durations, after the commit."""
    deltas: Counter = Counter()
    agents: dict[str, str] = {}
    for event in events:
        kind, _, status = event.type.partition(".")
        if kind == "run":
            deltas[f"run:{status.upper()}"] += 1
        elif kind == "step":
            step = event.data.get("step") or {}
            deltas[f"step:{status.upper()}"] += 1
            agent, duration_ms = step.get("agent_name"), step.get("duration_ms")
            if status.upper() in FINISHED_STEP and agent and duration_ms is not None:
                digest = _digest(agent)
                agents[digest] = agent
                deltas[f"d:{digest}:b{bisect.bisect_left(BUCKETS, duration_ms / 1000)}"] += 1
                deltas[f"d:{digest}:sum_ms"] += int(duration_ms)
                deltas[f"d:{digest}:count"] += 1
    if deltas:
        transaction.on_commit(lambda: counters_add(deltas, agents))


@contextlib.contextmanager
def counters_batched():
    """The counts of every commit in the block go to the store in one pass at its end: the executor
    handles a poll's messages in one, so a result costs no store round trip of its own (measured: the
    file cache's read-and-write per counter was a tenth of the executor's time)."""
    batch: tuple[Counter, dict] = (Counter(), {})
    token = _batch.set(batch)
    try:
        yield
    finally:
        _batch.reset(token)
        if batch[0]:
            counters_add(*batch)


def counters_add(deltas: Counter, agents: dict[str, str] | None = None) -> None:
    """Adds to the shared counters; never raises (a metric must not fail the change it counts)."""
    batch = _batch.get()
    if batch is not None:
        batch[0].update(deltas)
        batch[1].update(agents or {})
        return
    try:
        for key, amount in deltas.items():
            name = COUNTER_PREFIX + key
            try:
                cache.incr(name, amount)
            except ValueError:  # the first of its kind
                cache.add(name, 0, timeout=None)
                cache.incr(name, amount)
        if agents:
            _agents_register(agents)
    except Exception:  # noqa: BLE001 - the store is away: these counts are lost, the engine goes on
        log.warning("could not update the engine metrics in the shared store", exc_info=True)


def _agents_register(agents: dict[str, str]) -> None:
    """Keeps the list of agents with durations. Two processes adding at once may lose one addition:
    each process checks again every AGENTS_RECHECK_SECONDS, which puts it back (its counts are kept)."""
    now = time.monotonic()
    due = {d: name for d, name in agents.items() if now - _agents_seen.get(d, float("-inf")) >= AGENTS_RECHECK_SECONDS}
    if not due:
        return
    known = cache.get(AGENTS_KEY) or {}
    if any(d not in known for d in due):
        cache.set(AGENTS_KEY, {**known, **due}, timeout=None)
    _agents_seen.update(dict.fromkeys(due, now))


# --- reading, at scrape time ----------------------------------------------------------------------------


def snapshot() -> dict:
    """Everything the collector shows, from the shared cache when a scrape made it lately."""
    seconds = settings.ENGINE_METRICS_CACHE_SECONDS
    cached = cache.get(SNAPSHOT_KEY) if seconds else None
    if cached is not None:
        return cached
    started = time.monotonic()
    data = {"runs": active_runs(), "outbox": outbox_backlog(), "lag": consumer_lag(), **counters_read()}
    data["seconds"] = time.monotonic() - started
    if seconds:
        cache.set(SNAPSHOT_KEY, data, timeout=seconds)
    return data


def active_runs() -> dict[str, int]:
    # Active runs only, through the status index; the finished ones are counted as they finish.
    rows = Run.objects.filter(status__in=ACTIVE_RUN).values("status").annotate(n=Count("id")).order_by()
    counts = dict.fromkeys(ACTIVE_RUN, 0)
    counts.update({row["status"]: row["n"] for row in rows})
    return {str(status): n for status, n in counts.items()}


def outbox_backlog() -> dict:
    """Rows not sent (pending, and dead: given up on), and the age of the oldest pending one."""
    pending = Q(dead_at__isnull=True)
    row = OutboxMessage.objects.filter(sent_at__isnull=True).aggregate(
        pending=Count("id", filter=pending), dead=Count("id", filter=~pending), oldest=Min("created_at", filter=pending)
    )
    age = (timezone.now() - row["oldest"]).total_seconds() if row["oldest"] else 0.0
    return {"pending": row["pending"], "dead": row["dead"], "oldest_age": max(age, 0.0)}


def counters_read() -> dict:
    agents = cache.get(AGENTS_KEY) or {}
    names = [f"run:{s}" for s in RunStatus.values] + [f"step:{s}" for s in STEP_STATUSES]
    for digest in agents:
        names += [f"d:{digest}:b{i}" for i in range(len(BUCKETS) + 1)] + [f"d:{digest}:sum_ms", f"d:{digest}:count"]
    values = cache.get_many([COUNTER_PREFIX + name for name in names])

    def value(name: str) -> int:
        return int(values.get(COUNTER_PREFIX + name) or 0)

    durations = {}
    for digest, agent in agents.items():
        buckets = [value(f"d:{digest}:b{i}") for i in range(len(BUCKETS) + 1)]
        durations[agent] = {"buckets": buckets, "sum_ms": value(f"d:{digest}:sum_ms")}
    return {
        "run_changes": {s: value(f"run:{s}") for s in RunStatus.values},
        "step_changes": {s: value(f"step:{s}") for s in STEP_STATUSES},
        "durations": durations,
    }


def consumer_groups() -> dict[str, list[str]]:
    return {
        settings.KAFKA_EXECUTOR_GROUP: [
            settings.KAFKA_EXECUTION_TOPIC,
            settings.KAFKA_CANCELLATION_TOPIC,
            settings.KAFKA_RESULTS_TOPIC,
        ],
        settings.KAFKA_BRIDGE_GROUP: [settings.KAFKA_TASKS_TOPIC],
    }


def _reachable(servers: list[str]) -> bool:
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), LAG_TIMEOUT_MS / 1000):
                return True
        except (OSError, ValueError):
            continue
    return False


def consumer_lag() -> list | None:
    """[group, topic, lag] per group and topic: end offsets minus committed ones (from the start of the
    log for a partition the group never committed). None when Kafka is not configured or away."""
    servers = settings.KAFKA_BOOTSTRAP_SERVERS
    if not servers or not _reachable(servers):
        return None
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka.structs import TopicPartition

    timeouts = {"request_timeout_ms": LAG_TIMEOUT_MS, "bootstrap_timeout_ms": LAG_TIMEOUT_MS}
    admin = reader = None
    try:
        admin = KafkaAdminClient(bootstrap_servers=servers, **timeouts)
        reader = KafkaConsumer(bootstrap_servers=servers, group_id=None, **timeouts)
        lags = []
        for group, topics in consumer_groups().items():
            partitions = [TopicPartition(t, p) for t in topics for p in sorted(reader.partitions_for_topic(t) or ())]
            if not partitions:
                continue
            committed = admin.list_group_offsets({group: partitions}).get(group) or {}
            ends = reader.end_offsets(partitions, timeout_ms=LAG_TIMEOUT_MS)
            starts = reader.beginning_offsets(partitions, timeout_ms=LAG_TIMEOUT_MS)
            per_topic: Counter = Counter({t: 0 for t in topics if any(tp.topic == t for tp in partitions)})
            for tp in partitions:
                meta = committed.get(tp)
                offset = meta.offset if meta is not None and meta.offset >= 0 else starts.get(tp, 0)
                per_topic[tp.topic] += max(ends.get(tp, 0) - offset, 0)
            lags += [[group, topic, lag] for topic, lag in per_topic.items()]
        return lags
    except Exception as exc:  # noqa: BLE001 - a broker that answers slowly or not at all: no lag this time
        log.warning("could not read the consumer lag from Kafka: %s: %s", type(exc).__name__, exc)
        return None
    finally:
        for client in (reader, admin):
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing after a failure
                    log.debug("closing a Kafka client failed", exc_info=True)


# --- the collector --------------------------------------------------------------------------------------


class EngineCollector:
    """Registered once on prometheus_client's REGISTRY (RunsConfig.ready()); django-prometheus's view
    exports it with the request metrics."""

    def describe(self):
        # Names only: registering must not query the database (it happens at every process start).
        return list(self.families({}))

    def collect(self):
        try:
            data = snapshot()
        except Exception:  # noqa: BLE001 - the database is away: /metrics still answers the rest
            log.warning("engine metrics unavailable", exc_info=True)
            data = {"error": True}
        return self.families(data)

    def families(self, data: dict):
        runs = GaugeMetricFamily("wfplatform_runs", "Runs now PENDING or RUNNING, by status.", labels=["status"])
        for status, n in (data.get("runs") or {}).items():
            runs.add_metric([status], n)
        yield runs
        changes = CounterMetricFamily(
            "wfplatform_run_status_changes",
            "Runs that moved to each status (finished runs, retries).",
            labels=["status"],
        )
        for status, n in (data.get("run_changes") or {}).items():
            changes.add_metric([status], n)
        yield changes
        steps = CounterMetricFamily(
            "wfplatform_step_status_changes", "Step executions that moved to each status.", labels=["status"]
        )
        for status, n in (data.get("step_changes") or {}).items():
            steps.add_metric([status], n)
        yield steps
        durations = HistogramMetricFamily(
            "wfplatform_step_duration_seconds",
            "Agent step durations (completed or failed), by agent.",
            labels=["agent"],
        )
        for agent, histogram in sorted((data.get("durations") or {}).items()):
            cumulative, total = [], 0
            for bound, n in zip([*map(str, BUCKETS), "+Inf"], histogram["buckets"], strict=True):
                total += n
                cumulative.append((bound, total))
            durations.add_metric([agent], cumulative, histogram["sum_ms"] / 1000)
        yield durations
        outbox = data.get("outbox")
        pending = GaugeMetricFamily("wfplatform_outbox_pending", "Outbox rows waiting to be sent to Kafka.")
        dead = GaugeMetricFamily("wfplatform_outbox_dead", "Outbox rows given up on (shown in the admin).")
        oldest = GaugeMetricFamily(
            "wfplatform_outbox_oldest_pending_age_seconds", "Age of the oldest outbox row waiting to be sent (0: none)."
        )
        if outbox:
            pending.add_metric([], outbox["pending"])
            dead.add_metric([], outbox["dead"])
            oldest.add_metric([], outbox["oldest_age"])
        yield from (pending, dead, oldest)
        lag = GaugeMetricFamily(
            "wfplatform_kafka_consumer_lag",
            "Messages not yet committed by a consumer group, per topic (absent while Kafka is away).",
            labels=["group", "topic"],
        )
        for group, topic, n in data.get("lag") or ():
            lag.add_metric([group, topic], n)
        yield lag
        up = GaugeMetricFamily("wfplatform_engine_metrics_up", "1 when the engine metrics could be read, else 0.")
        kafka_up = GaugeMetricFamily("wfplatform_kafka_lag_up", "1 when the consumer lag could be read from Kafka.")
        if data:
            up.add_metric([], 0 if data.get("error") else 1)
            if settings.KAFKA_BOOTSTRAP_SERVERS:
                kafka_up.add_metric([], 0 if data.get("lag") is None else 1)
        yield from (up, kafka_up)


_collector: EngineCollector | None = None


def collector_register() -> None:
    """Once per process (AppConfig.ready() may run again in tests): the registry refuses duplicates."""
    global _collector
    if _collector is not None:
        return
    from prometheus_client import REGISTRY

    _collector = EngineCollector()
    REGISTRY.register(_collector)
