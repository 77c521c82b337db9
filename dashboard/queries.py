"""The dashboard's figures, each one aggregate query (the circuit states: one read of their store), so
the page costs the same at 100 runs as at 100,000. Reads only: nothing here writes."""

from __future__ import annotations

import math
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncHour

from agents import breaker
from agents.breaker_store import circuit_views
from agents.models import Agent
from core.models import OutboxMessage
from dashboard.counted import counted_by_hour
from runs.choices import RunStatus, StepStatus
from runs.counts import counters_available
from runs.models import Run
from webhooks.choices import DeliveryStatus
from webhooks.models import Delivery

P95 = 0.95
# The step tables read the step tries of the newest RUN_SAMPLE runs created in the window (through the
# runs' created_at index and the steps' run index), so their cost is bounded however busy the window
# was; the page says when the window held more runs. SQLite (no percentile_cont) also bounds the rows
# it brings into Python for its p95.
RUN_SAMPLE = 2_000
SAMPLE_ROWS = 20_000
TOP = 8  # rows of the "slowest steps" and "busiest agents" tables


@dataclass(frozen=True)
class Windows:
    """The instants every figure of one page view is counted from: one `now` for all of them."""

    now: datetime

    @property
    def day(self) -> datetime:
        return self.now - timedelta(hours=24)

    @property
    def week(self) -> datetime:
        return self.now - timedelta(days=7)

    def hours(self) -> list[datetime]:
        """The 24 UTC hours of the hourly chart, oldest first (the last is the hour in progress)."""
        top = self.now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return [top - timedelta(hours=23 - i) for i in range(24)]

    def days(self) -> list[datetime]:
        """The 7 UTC days of the daily chart, oldest first (the last is today)."""
        top = self.now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return [top - timedelta(days=6 - i) for i in range(7)]


def run_counts(windows: Windows) -> dict:
    """Runs created in the last 7 days by status and UTC hour (one GROUP BY over the created_at index):
    the totals of both windows and both charts are sums of its rows. The hour that holds the 24 h
    window's start counts only its runs after that start (a filtered count), so totals are exact."""
    if counters_available():
        hourly, day = counted_by_hour(windows.week, windows.day)
        return _summed(hourly, day)
    rows = (
        Run.objects.filter(created_at__gte=windows.week)
        .annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .values("hour", "status")
        .annotate(week=Count("id"), day=Count("id", filter=Q(created_at__gte=windows.day)))
        .order_by()
    )
    day, week = defaultdict(int), defaultdict(int)
    hourly, daily = defaultdict(int), defaultdict(int)
    for row in rows:
        hour = row["hour"].astimezone(UTC)
        status = row["status"]
        day[status] += row["day"]
        week[status] += row["week"]
        hourly[(hour, status)] += row["week"]
        daily[(hour.replace(hour=0), status)] += row["week"]
    return {"day": dict(day), "week": dict(week), "hourly": dict(hourly), "daily": dict(daily)}


def _summed(hourly: dict, day: dict) -> dict:
    week, daily = defaultdict(int), defaultdict(int)
    for (hour, status), n in hourly.items():
        week[status] += n
        daily[(hour.replace(hour=0), status)] += n
    return {"day": day, "week": dict(week), "hourly": hourly, "daily": dict(daily)}


def failure_rate(counts: dict[str, int]) -> float | None:
    """FAILED among the runs that ended by themselves (COMPLETED or FAILED); a cancel is a person's
    decision, not a failure. None when none ended."""
    ended = counts.get(RunStatus.COMPLETED, 0) + counts.get(RunStatus.FAILED, 0)
    return counts.get(RunStatus.FAILED, 0) / ended if ended else None


def percentile(values: list[float], fraction: float) -> float:
    """The same interpolation as PostgreSQL's percentile_cont, for the SQLite fallback."""
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# The newest RUN_SAMPLE runs of the window (the runs' created_at index), then their step tries started
# in the window (the steps' run index). One pass over those tries gives both tables: on PostgreSQL
# grouped two ways at once (GROUPING SETS: per workflow and step, per agent), elsewhere in Python.
NEWEST_RUNS = """
WITH newest AS (
    SELECT id, workflow_id, workflow_name FROM runs_run
    WHERE created_at >= %(since)s ORDER BY created_at DESC, id DESC LIMIT %(runs)s
)
SELECT {columns} FROM newest {steps}
"""
# PostgreSQL would hash-join a seq scan of every step when the window is large: the LATERAL subquery
# (kept from being pulled up into a join by OFFSET 0) reads each run's tries through the run index.
LATERAL_STEPS = """CROSS JOIN LATERAL (
    SELECT step_id, agent_name, duration_ms, status FROM runs_stepexecution
    WHERE run_id = newest.id AND created_at >= %(since)s OFFSET 0
) s """
JOINED_STEPS = "JOIN runs_stepexecution s ON s.run_id = newest.id WHERE s.created_at >= %(since)s "
GROUPED_SQL = (
    NEWEST_RUNS.format(
        columns="GROUPING(s.agent_name), newest.workflow_id, MAX(newest.workflow_name), s.step_id, s.agent_name, "
        "percentile_cont(%(fraction)s) WITHIN GROUP (ORDER BY s.duration_ms), COUNT(s.duration_ms), COUNT(*), "
        "SUM(CASE WHEN s.status = %(failed)s THEN 1 ELSE 0 END)",
        steps=LATERAL_STEPS,
    )
    + "GROUP BY GROUPING SETS ((newest.workflow_id, s.step_id), (s.agent_name))"
)
ROWS_SQL = (
    NEWEST_RUNS.format(
        columns="newest.workflow_id, newest.workflow_name, s.step_id, s.agent_name, s.duration_ms, s.status",
        steps=JOINED_STEPS,
    )
    + "LIMIT %(rows)s"
)


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))  # SQLite returns its hex text


def step_tables(since: datetime) -> tuple[list[dict], list[dict]]:
    """(slowest steps, busiest agents) of the step tries in the window: p95 of duration_ms per workflow
    and step id over the tries that ended (duration_ms is stamped at the end), slowest first; calls
    (tries with an agent) and failed ones per agent, busiest first."""
    params = {
        "since": connection.ops.adapt_datetimefield_value(since),
        "runs": RUN_SAMPLE,
        "fraction": P95,
        "failed": StepStatus.FAILED,
        "rows": SAMPLE_ROWS,
    }
    steps, agents = [], []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(GROUPED_SQL, params)
            for by_step, wf, name, step_id, agent, p95, timed, calls, failed in cursor.fetchall():
                if by_step and p95 is not None:
                    steps.append(
                        {"workflow_id": wf, "workflow_name": name, "step_id": step_id, "p95_ms": p95, "n": timed}
                    )
                elif not by_step and agent:
                    agents.append({"agent_name": agent, "calls": calls, "failed": failed})
        else:
            cursor.execute(ROWS_SQL, params)
            steps, agents = _grouped(cursor.fetchall())
    steps.sort(key=lambda r: (-r["p95_ms"], r["step_id"]))
    agents.sort(key=lambda r: (-r["calls"], r["agent_name"]))
    return steps[:TOP], agents[:TOP]


def _grouped(rows) -> tuple[list[dict], list[dict]]:
    durations: dict[tuple, list] = defaultdict(list)
    names, calls, failed = {}, defaultdict(int), defaultdict(int)
    for workflow_id, name, step_id, agent, duration, status in rows:
        workflow_id = _uuid(workflow_id)
        names[workflow_id] = max(names.get(workflow_id, name), name)
        if duration is not None:
            durations[(workflow_id, step_id)].append(duration)
        if agent:
            calls[agent] += 1
            failed[agent] += status == StepStatus.FAILED
    steps = [
        {
            "workflow_id": wf,
            "workflow_name": names[wf],
            "step_id": step_id,
            "p95_ms": percentile(values, P95),
            "n": len(values),
        }
        for (wf, step_id), values in durations.items()
    ]
    return steps, [{"agent_name": agent, "calls": n, "failed": failed[agent]} for agent, n in calls.items()]


def failing_agents() -> dict:
    """Live agents whose circuit breaker is open or half-open. Nothing stores the result of the last
    health check (it is run on demand), so the breaker, fed by every real call, is the health signal."""
    agents = list(Agent.objects.live().only("id", "name", "circuit_breaker_config").order_by("name"))
    try:
        views = circuit_views(agents, time.time())
    except Exception:  # noqa: BLE001 - Redis away: say so instead of failing the whole page
        return {"available": False, "agents": [], "total": len(agents)}
    failing = [
        {"agent": agent, **views[agent.pk]}
        for agent in agents
        if views[agent.pk]["state"] in (breaker.OPEN, breaker.HALF_OPEN)
    ]
    for row in failing:
        row["opened_at"] = datetime.fromtimestamp(row["opened_at"], UTC) if row["opened_at"] else None
    return {"available": True, "agents": failing, "total": len(agents)}


def outbox_backlog() -> dict:
    """Unsent messages (the partial index of unsent rows): pending (still tried) and dead (given up)."""
    return OutboxMessage.objects.filter(sent_at__isnull=True).aggregate(
        pending=Count("id", filter=Q(dead_at__isnull=True)),
        dead=Count("id", filter=Q(dead_at__isnull=False)),
        oldest_pending=Min("created_at", filter=Q(dead_at__isnull=True)),
    )


def webhook_backlog(since: datetime) -> dict:
    """Open deliveries by status (all of them: they are the backlog) and those FAILED since `since`
    (a FAILED delivery is final and kept, so all time would only grow)."""
    open_statuses = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.RETRYING)
    failed = Q(status=DeliveryStatus.FAILED, created_at__gte=since)
    counts = Delivery.objects.filter(Q(status__in=open_statuses) | failed).aggregate(
        pending=Count("id", filter=Q(status=DeliveryStatus.PENDING)),
        sending=Count("id", filter=Q(status=DeliveryStatus.SENDING)),
        retrying=Count("id", filter=Q(status=DeliveryStatus.RETRYING)),
        failed=Count("id", filter=failed),
        oldest_open=Min("created_at", filter=Q(status__in=open_statuses)),
    )
    return counts
