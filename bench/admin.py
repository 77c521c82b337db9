"""Admin list pages at 100,000 runs: the server time of the runs list (plain and filtered by status),
the step executions, events and audit lists, each the median of several requests in-process (Django's
test client as a logged-in superuser: the view, its queries and the template, no HTTP), against the
target of issue 17 (300 ms).

    .venv/bin/python bench/admin.py                    # 100,000 runs, 4 steps each, in wfplatform_bench_admin
    .venv/bin/python bench/admin.py --runs 20000 --requests 5 --keep-db

The data is written with INSERT ... SELECT over generate_series (one workflow; runs over 30 days, 85%
COMPLETED, 10% FAILED, 5% CANCELLED; `--steps` step rows and one event per run; one audit event per
run), then VACUUM ANALYZE. PostgreSQL on 127.0.0.1:5432 (or BENCH_DATABASE_URL, see bench/common.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import base_url, drop_database, figure, main_with_figures, recreate_database  # noqa: E402

TARGET_MS = 300.0

RUNS_SQL = """
INSERT INTO runs_run (id, workflow_id, workflow_name, workflow_version, plan, status, attempt, input_data,
    output_data, error_message, triggered_by, created_at, updated_at, started_at, completed_at, cancelled_at,
    cancelled_by)
SELECT gen_random_uuid(), %(workflow)s, 'bench-flow', 1, %(plan)s::jsonb,
    CASE WHEN i %% 20 = 0 THEN 'CANCELLED' WHEN i %% 10 = 1 THEN 'FAILED' ELSE 'COMPLETED' END, 1,
    '{"text": "hello"}', NULL, CASE WHEN i %% 10 = 1 THEN 'agent answered 500' ELSE '' END, 'bench',
    t, t, t + interval '1 second', t + interval '9 seconds', NULL, ''
FROM (SELECT i, now() - (%(runs)s - i) * (interval '30 days' / %(runs)s) AS t
      FROM generate_series(1, %(runs)s) AS i) AS g
"""
STEPS_SQL = """
INSERT INTO runs_stepexecution (id, run_id, step_id, step_type, agent_name, scope, branch, status, attempt,
    try_number, input_data, output_data, error_message, task_id, created_at, started_at, completed_at, duration_ms)
SELECT gen_random_uuid(), r.id, 's' || k, 'agent', 'bench-agent', '', '',
    CASE WHEN r.status = 'FAILED' AND k = %(steps)s THEN 'FAILED' ELSE 'COMPLETED' END, 1, 1, '{}',
    '{"text": "ok"}', '', 'task-' || k, r.started_at + k * interval '2 seconds',
    r.started_at + k * interval '2 seconds', r.started_at + k * interval '2 seconds' + interval '1500 ms', 1500
FROM runs_run r CROSS JOIN generate_series(1, %(steps)s) AS k
"""
EVENTS_SQL = """
INSERT INTO runs_event (type, run_id, workflow_id, step_execution_id, data, created_at)
SELECT 'run.' || lower(status), id, workflow_id, NULL, '{}', completed_at FROM runs_run ORDER BY completed_at
"""
AUDIT_SQL = """
INSERT INTO audit_auditevent (id, created_at, "user", api_key_prefix, action, resource_type, resource_id, changes,
    input_data, request_id, ip)
SELECT gen_random_uuid(), created_at, 'bench', '', 'run.execute', 'run', id::text, '{}', NULL, '', NULL
FROM runs_run ORDER BY created_at
"""


def generate(runs: int, steps: int) -> None:
    import json

    from django.db import connection

    from agents.models import Agent
    from workflows.services import workflow_create

    Agent.objects.create(name="bench-agent", url="http://127.0.0.1:1/")
    definition = {
        "name": "bench-flow",
        "start_step": "s1",
        "steps": {
            f"s{k}": {"id": f"s{k}", "agent_name": "bench-agent", "next_step": f"s{k + 1}" if k < steps else None}
            for k in range(1, steps + 1)
        },
    }
    workflow = workflow_create(user=None, definition=definition)
    began = time.perf_counter()
    params = {"workflow": workflow.pk, "plan": json.dumps(workflow.definition), "runs": runs, "steps": steps}
    with connection.cursor() as cursor:
        for name, sql in (("runs", RUNS_SQL), ("steps", STEPS_SQL), ("events", EVENTS_SQL), ("audit", AUDIT_SQL)):
            cursor.execute(sql, params)
            print(f"  {name}: {cursor.rowcount:,} rows ({time.perf_counter() - began:.0f} s)", flush=True)
        for table in ("runs_run", "runs_stepexecution", "runs_event", "audit_auditevent"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"  vacuumed ({time.perf_counter() - began:.0f} s)", flush=True)


def measure(client, path: str, requests: int) -> tuple[float, float]:
    """Medians of the wall time (the target's measure) and of this process's CPU time per request: on a
    machine busy with other work the wall time includes waiting for a CPU, the CPU time does not."""
    for _ in range(2):  # warm-up: template loading, the first plans
        assert client.get(path).status_code == 200, path
    wall, cpu = [], []
    for _ in range(requests):
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(path)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        assert response.status_code == 200, path
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=4, help="step rows per run (default 4)")
    parser.add_argument("--requests", type=int, default=9, help="measured requests per page (default 9)")
    parser.add_argument("--db-name", default="wfplatform_bench_admin")
    parser.add_argument("--keep-db", action="store_true", help="keep the database (and reuse it when kept before)")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = f"{base_url().rstrip('/')}/{args.db_name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATA_DIR", f"/tmp/{args.db_name}")
    import django

    reuse = args.keep_db and _has_runs(args.db_name, args.runs)
    if not reuse:
        recreate_database(args.db_name)
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    try:
        call_command("migrate", verbosity=0)
        if not reuse:
            print(f"Generating {args.runs:,} runs with {args.steps} steps each ...", flush=True)
            generate(args.runs, args.steps)
        user = get_user_model().objects.filter(username="bench-admin").first()
        user = user or get_user_model().objects.create_superuser("bench-admin", "", "pw-bench-123456")
        client = Client()
        client.force_login(user)
        pages = [
            ("admin runs list", "/admin/runs/run/"),
            ("admin runs list, status=FAILED", "/admin/runs/run/?status__exact=FAILED"),
            ("admin step executions list", "/admin/runs/stepexecution/"),
            ("admin events list", "/admin/runs/event/"),
            ("admin audit list", "/admin/audit/auditevent/"),
        ]
        print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"{'measure':<40} {'target':>10} {'median':>10} {'met':>5} {'CPU (Django)':>13}")
        failed = 0
        for name, path in pages:
            median, cpu = measure(client, path, args.requests)
            met = median <= TARGET_MS
            failed += not met
            figure(f"{name} at {args.runs:,} runs (median, in-process)", f"<= {TARGET_MS:.0f} ms", median, "ms")
            figure(f"{name}: CPU time of the request in Django (median)", "", cpu, "ms")
            print(
                f"{name:<40} {'<= 300 ms':>10} {median:>7.1f} ms {'yes' if met else 'NO':>5} {cpu:>10.1f} ms",
                flush=True,
            )
        return 1 if failed else 0
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(args.db_name)


def _has_runs(db_name: str, runs: int) -> bool:
    from psycopg import sql

    from bench.common import admin_connect

    with admin_connect() as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone():
            return False
    import psycopg

    with psycopg.connect(f"{base_url().replace('postgres://', 'postgresql://', 1).rstrip('/')}/{db_name}") as conn:
        if not conn.execute("SELECT to_regclass('runs_run')").fetchone()[0]:
            return False
        return conn.execute(sql.SQL("SELECT COUNT(*) FROM runs_run")).fetchone()[0] == runs


if __name__ == "__main__":
    sys.exit(main_with_figures(main))
