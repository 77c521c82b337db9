"""The admin dashboard (the admin index, dashboard/) at 100,000 runs: server time of the page, its
number of queries, and each query's plan (issue 17: under 300 ms, like the admin lists).

    .venv/bin/python bench/admin_dashboard.py                 # 100,000 runs in database wfplatform_bench_dashboard
    .venv/bin/python bench/admin_dashboard.py --runs 20000 --explain

The data is the dashboard's worst case: every run created within the 7-day window (so every figure
reads all of them), 3 timed step tries per run over 200 workflows and 16 agents, 1,000 unsent outbox
rows and 2,000 open or failed webhook deliveries, written with INSERT ... SELECT generate_series. The
page is rendered in-process (Django's test client, a logged-in superuser: no HTTP, no gunicorn), as
the server's own time; both windows of the steps and agents tables are measured.

PostgreSQL on 127.0.0.1:5432 (or BENCH_DATABASE_URL, see bench/common.py).
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    base_url,
    django_setup,
    drop_database,
    figure,
    main_with_figures,
    recreate_database,
)

TARGET_MS = 300

SEED_SQL = [
    """INSERT INTO workflows_workflow (id, name, description, definition, version, status, created_at, updated_at,
        created_by, updated_by)
    SELECT md5('wf' || i)::uuid, 'workflow-' || i, '', '{}'::jsonb, 1, 'active', now(), now(), '', ''
    FROM generate_series(1, 200) i""",
    # Spread evenly over the last 7 days; statuses as a busy deployment's (87% completed, 9% failed).
    """INSERT INTO runs_run (id, workflow_id, workflow_name, workflow_version, plan, status, attempt, input_data,
        error_message, triggered_by, created_at, updated_at, cancelled_by)
    SELECT md5('run' || i)::uuid, md5('wf' || (i %% 200 + 1))::uuid, 'workflow-' || (i %% 200 + 1), 1, '{}'::jsonb,
        CASE WHEN i %% 100 < 87 THEN 'COMPLETED' WHEN i %% 100 < 96 THEN 'FAILED' WHEN i %% 100 < 98 THEN 'CANCELLED'
             ELSE 'RUNNING' END,
        1, '{}'::jsonb, '', '', t, t, ''
    FROM (SELECT i, now() - (interval '7 days' - interval '1 minute') * (i::float / %(runs)s) AS t
          FROM generate_series(1, %(runs)s) i) s""",
    """INSERT INTO runs_stepexecution (id, run_id, step_id, step_type, agent_name, scope, branch, status, attempt,
        try_number, error_message, task_id, created_at, started_at, completed_at, duration_ms)
    SELECT gen_random_uuid(), r.id, 's' || k, 'agent', 'agent-' || ((hashtext(r.id::text) + k) & 15), '', '',
        CASE WHEN r.status = 'FAILED' AND k = 3 THEN 'FAILED' ELSE 'COMPLETED' END, 1, 1, '', '',
        r.created_at, r.created_at, r.created_at, (abs(hashtext(r.id::text || k)) %% 5000) * k
    FROM runs_run r, generate_series(1, 3) k""",
    """INSERT INTO core_outboxmessage (topic, key, payload, created_at, next_attempt_at, attempts, last_error, dead_at)
    SELECT 'workflow.execute', 'k' || i, '{}'::jsonb, now(), now(), 0, '', CASE WHEN i %% 10 = 0 THEN now() END
    FROM generate_series(1, 1000) i""",
    """INSERT INTO webhooks_webhookendpoint (id, url, description, event_types, active, disabled_reason, secret,
        created_at, updated_at, created_by, updated_by)
    VALUES (md5('ep')::uuid, 'https://example.com/hook', '', '["*"]'::jsonb, true, '', 'x', now(), now(), '', '')""",
    """INSERT INTO webhooks_delivery (id, endpoint_id, event_type, status, attempt_count, tries, last_error, created_at)
    SELECT gen_random_uuid(), md5('ep')::uuid, 'run.completed',
        (ARRAY['PENDING', 'RETRYING', 'FAILED', 'SUCCEEDED'])[i %% 4 + 1], 0, 0, '', now() - interval '1 hour'
    FROM generate_series(1, 8000) i""",
]


def seed(runs: int) -> None:
    from django.db import connection

    from agents.models import Agent

    started = time.perf_counter()
    Agent.objects.bulk_create(Agent(name=f"agent-{i}", url=f"http://agent-{i}:8080/") for i in range(16))
    with connection.cursor() as cursor:
        for sql in SEED_SQL:
            cursor.execute(sql, {"runs": runs})
        for table in ("runs_run", "runs_stepexecution", "core_outboxmessage", "webhooks_delivery"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"seeded {runs:,} runs, {3 * runs:,} step tries in {time.perf_counter() - started:.1f} s")


def timed(client, path: str, requests: int) -> list[float]:
    durations = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        durations.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return durations


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)]


def queries_of(client, path: str) -> list[dict]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(path)
    return captured.captured_queries


def explain(queries: list[dict]) -> None:
    """EXPLAIN ANALYZE of the dashboard's own queries (not the session's and the user's)."""
    from django.db import connection

    tables = ("runs_run", "runs_stepexecution", "core_outboxmessage", "webhooks_delivery", "agents_agent")
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"].strip()
            if not sql.startswith(("SELECT", "WITH")) or not any(t in sql for t in tables):
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            print("\n" + sql[:300] + ("..." if len(sql) > 300 else ""))
            print("\n".join(f"    {row[0]}" for row in cursor.fetchall()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30, help="measured requests per page (default 30)")
    parser.add_argument("--db-name", default="wfplatform_bench_dashboard")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="measure the kept database of an earlier --keep-db run")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the dashboard's queries")
    args = parser.parse_args()

    if not args.reuse:
        recreate_database(args.db_name)
    os.environ.update(
        DATABASE_URL=f"{base_url()}/{args.db_name}",
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        DEBUG="0",
        LOG_LEVEL="WARNING",
        REDIS_URL="",  # the circuit states from the database store: no Redis needed
    )
    try:
        django_setup()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client

        settings.ALLOWED_HOSTS = ["*"]
        call_command("migrate", verbosity=0)
        if not args.reuse:
            seed(args.runs)
            get_user_model().objects.create_superuser("bench", "", "pw-bench-123456")
        client = Client()
        client.force_login(get_user_model().objects.get(username="bench"))
        failed = False
        for path, name in (("/admin/", "24 h"), ("/admin/?window=7d", "7 d")):
            timed(client, path, 3)  # warm-up: templates compiled, caches filled
            durations = timed(client, path, args.requests)
            captured = queries_of(client, path)
            count = len(captured)
            sql_ms = sum(float(query["time"]) for query in captured) * 1000
            slowest = sorted((float(q["time"]) * 1000 for q in captured), reverse=True)[:4]
            median, high = statistics.median(durations), p95(durations)
            print(
                f"dashboard ({name} steps window) at {args.runs:,} runs: median {median:.1f} ms, "
                f"p95 {high:.1f} ms, max {max(durations):.1f} ms (n={len(durations)}), {count} queries taking "
                f"{sql_ms:.1f} ms (slowest: {', '.join(f'{t:.1f}' for t in slowest)} ms)"
            )
            figure(f"admin dashboard p95 ({name} window), {args.runs:,} runs", f"<= {TARGET_MS} ms", high, "ms")
            failed |= high > TARGET_MS
            if args.explain:
                explain(queries_of(client, path))
        # The runs list under the same load: the page whose target (issue 17) the dashboard shares.
        timed(client, "/admin/runs/run/", 3)
        reference = timed(client, "/admin/runs/run/", args.requests)
        print(
            f"for reference, the runs list: median {statistics.median(reference):.1f} ms, p95 {p95(reference):.1f} ms"
        )
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"target p95 <= {TARGET_MS} ms: {'missed' if failed else 'met'}")
        return 1 if failed else 0
    finally:
        from django.db import connections

        connections.close_all()
        if not (args.keep_db or args.reuse):
            drop_database(args.db_name)


if __name__ == "__main__":
    sys.exit(main_with_figures(main))
