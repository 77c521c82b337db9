"""The dashboard's run counts from the run counters (runs/counts.py, PostgreSQL): the whole hours of
the 7-day window come from the hour rows and the deltas not folded yet (some hundred rows, whatever
the number of runs), and only the two partial hours at the windows' starts are counted from the runs
themselves (an index range of at most an hour each). Same answer as counting every run of the week,
which at 100,000 runs read them all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection

from runs.counts import ALL_WORKFLOWS, hour_ceil

HOURS_SQL = """
SELECT start, status, SUM(n) FROM (
    SELECT start, status, n FROM runs_runcount
    WHERE grain = 'h' AND workflow_id = %(all)s AND start >= %(whole)s
    UNION ALL
    SELECT hour, status, delta FROM runs_runcountdelta WHERE hour >= %(whole)s
) counted GROUP BY start, status HAVING SUM(n) <> 0
"""
# The runs of [start, end) by status: a window's first, partial hour.
EDGE_SQL = "SELECT status, COUNT(*) FROM runs_run WHERE created_at >= %s AND created_at < %s GROUP BY status"


def counted_by_hour(week: datetime, day: datetime) -> tuple[dict, dict]:
    """({(hour, status): runs} created since `week`, {status: runs} created since `day`): the hour
    holding a window's start counts only the runs after that start."""
    whole_week, whole_day = hour_ceil(week), hour_ceil(day)
    hourly, day_counts = {}, {}
    with connection.cursor() as cursor:
        cursor.execute(HOURS_SQL, {"all": ALL_WORKFLOWS, "whole": whole_week})
        for start, status, n in cursor.fetchall():
            start = start.astimezone(UTC)
            hourly[(start, status)] = int(n)
            if start >= whole_day:
                day_counts[status] = day_counts.get(status, 0) + int(n)
        for begin, end, into_day in ((week, whole_week, False), (day, whole_day, True)):
            if begin == end:
                continue
            cursor.execute(EDGE_SQL, [begin, end])
            for status, n in cursor.fetchall():
                if into_day:
                    day_counts[status] = day_counts.get(status, 0) + n
                else:
                    key = (end - timedelta(hours=1), status)
                    hourly[key] = hourly.get(key, 0) + n
    return hourly, day_counts
