"""Exact run-list totals without COUNT(*) over millions of rows (PostgreSQL; docs/performance.md).

* A trigger on runs_run (migration 0012) appends a delta row, `(workflow, status, created hour, ±1)`,
  to RunCountDelta for every insert, delete and change of status (or workflow, or created_at), in
  the writer's transaction. So no code path can forget it (ORM saves, `.update()`, bulk creates, raw
  SQL), and writers never wait for each other: they only insert, there is no hot counter row.
* `run_counts_fold` (beat, every RUN_COUNTS_FOLD_SECONDS) moves the deltas into RunCount in one
  transaction: per hour and per UTC day, per workflow and for all workflows (ALL_WORKFLOWS).
* `run_total` answers in one SQL statement (one snapshot, so it is exact even while writes and a
  fold go on): days and hours from RunCount, the unfolded deltas of those hours, and COUNT(*) over
  the runs themselves only for the part of a date range that is not a whole hour (its two ends).

SQLite (the quick start) has no trigger: there `run_total` answers None and the list counts rows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

ALL_WORKFLOWS = uuid.UUID(int=0)  # RunCount rows summed over every workflow
LOWEST = datetime(1, 1, 2, tzinfo=UTC)  # "no lower bound": a day boundary far before any run
HIGHEST = datetime(9999, 12, 30, tzinfo=UTC)
FOLD_LOCK = 0x52554E53  # pg advisory lock: one fold (or rebuild) at a time

# Into the hour and day rows of each workflow and of all workflows, from `grouped` (workflow, status, hour, n).
_SPREAD_SQL = """
spread AS (
    SELECT 'h' AS grain, workflow_id, status, hour AS start, n FROM grouped
    UNION ALL SELECT 'h', %(all)s, status, hour, n FROM grouped
    UNION ALL SELECT 'd', workflow_id, status, date_trunc('day', hour, 'UTC'), n FROM grouped
    UNION ALL SELECT 'd', %(all)s, status, date_trunc('day', hour, 'UTC'), n FROM grouped
)
INSERT INTO runs_runcount (grain, workflow_id, status, start, n)
SELECT grain, workflow_id, status, start, SUM(n) FROM spread GROUP BY 1, 2, 3, 4 HAVING SUM(n) <> 0
ON CONFLICT (grain, workflow_id, start, status) DO UPDATE SET n = runs_runcount.n + EXCLUDED.n
"""
# Every delta visible to this statement goes; deltas committed meanwhile stay for the next fold.
_FOLD_GROUPED = """
WITH moved AS (DELETE FROM runs_runcountdelta RETURNING workflow_id, status, hour, delta),
grouped AS (SELECT workflow_id, status, hour, SUM(delta) AS n FROM moved GROUP BY 1, 2, 3),
"""
# Straight from the runs, not through the delta table (which would be left with a dead row per group).
_REBUILD_GROUPED = """
WITH grouped AS (
    SELECT workflow_id, status, date_trunc('hour', created_at, 'UTC') AS hour, COUNT(*) AS n
    FROM runs_run GROUP BY 1, 2, 3
),
"""
FOLD_SQL = _FOLD_GROUPED + _SPREAD_SQL
REBUILD_SQL = _REBUILD_GROUPED + _SPREAD_SQL


def counters_available() -> bool:
    return connection.vendor == "postgresql"


def run_counts_fold() -> int:
    """Moves the pending deltas into the counters; returns how many counter rows it wrote."""
    if not counters_available():
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        cursor.execute(FOLD_SQL, {"all": ALL_WORKFLOWS})
        return cursor.rowcount


def run_counts_rebuild() -> int:
    """Recounts every run into the counters (backfill and repair). Writes to runs wait meanwhile (a
    SHARE lock), so no change falls between the recount and the trigger. Returns the runs counted."""
    if not counters_available():
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        cursor.execute("LOCK TABLE runs_run IN SHARE MODE")
        cursor.execute("TRUNCATE runs_runcountdelta, runs_runcount")
        cursor.execute(REBUILD_SQL, {"all": ALL_WORKFLOWS})
        cursor.execute(
            "SELECT COALESCE(SUM(n), 0) FROM runs_runcount WHERE grain = 'd' AND workflow_id = %s", [ALL_WORKFLOWS]
        )
        return int(cursor.fetchone()[0])


def hour_floor(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceil(when: datetime) -> datetime:
    floor = hour_floor(when)
    return floor if floor == when else floor + timedelta(hours=1)


def _day_floor(when: datetime) -> datetime:
    return when.replace(hour=0)


def _day_ceil(when: datetime) -> datetime:
    floor = _day_floor(when)
    return floor if floor == when else floor + timedelta(days=1)


def run_total(
    *,
    statuses: list[str] | None = None,
    workflow_id: uuid.UUID | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> int | None:
    """How many runs match (status in `statuses`, the workflow, created_after <= created_at <
    created_before), exactly; None where there are no counters (SQLite)."""
    if not counters_available():
        return None
    low, high = created_after or LOWEST, created_before or HIGHEST
    if low >= high:
        return 0
    h0, h1 = hour_ceil(low), hour_floor(high)
    if h0 >= h1:  # inside one hour: nothing whole to take from the counters
        h0 = h1 = high
    d0, d1 = _day_ceil(h0), _day_floor(h1)
    if d0 >= d1:  # no whole day: hours only
        d0 = d1 = hd0 = hd1 = h1
    else:
        hd0, hd1 = d0, d1
    params = {
        "wf": workflow_id or ALL_WORKFLOWS,
        "st": list(statuses or []),
        "low": low,
        "high": high,
        "h0": h0,
        "h1": h1,
        "d0": d0,
        "d1": d1,
        "hd0": hd0,
        "hd1": hd1,
    }
    status_of = "AND status = ANY(%(st)s)" if statuses else ""
    workflow_of = "AND workflow_id = %(wf)s" if workflow_id else ""
    # Only the two fixed fragments above are put into the text; every value is a parameter.
    sql = f"""
    SELECT
      (SELECT COALESCE(SUM(n), 0) FROM runs_runcount WHERE workflow_id = %(wf)s {status_of} AND (
           (grain = 'd' AND start >= %(d0)s AND start < %(d1)s)
        OR (grain = 'h' AND start >= %(h0)s AND start < %(hd0)s)
        OR (grain = 'h' AND start >= %(hd1)s AND start < %(h1)s)))
    + (SELECT COALESCE(SUM(delta), 0) FROM runs_runcountdelta
       WHERE hour >= %(h0)s AND hour < %(h1)s {status_of} {workflow_of})
    + (SELECT COUNT(*) FROM runs_run WHERE created_at >= %(low)s AND created_at < %(h0)s {status_of} {workflow_of})
    + (SELECT COUNT(*) FROM runs_run WHERE created_at >= %(h1)s AND created_at < %(high)s {status_of} {workflow_of})
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])
