"""A run's admin page with 1,000 step executions: its server time (the median of several requests
in-process: Django's test client as a logged-in superuser, the view, its queries and the template, no
HTTP) against the target of issue 17 (1 s), with its query count.

    .venv/bin/python bench/admin_run_page.py                  # 1,000 executions, 3,000 logs
    .venv/bin/python bench/admin_run_page.py --steps 5000 --logs 20000 --requests 5

The run is a loop over items (a block row, an iteration row per item, two body steps per iteration,
every 7th body step retried once, one iteration failed) then a last step, written with bulk_create in
a fresh database (wfplatform_bench_run_page, dropped after). PostgreSQL on 127.0.0.1:5432 (or
BENCH_DATABASE_URL, see bench/common.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import base_url, drop_database, figure, main_with_figures, recreate_database  # noqa: E402

TARGET_MS = 1000.0


def definition() -> dict:
    def agent(step_id, **extra):
        return {"id": step_id, "agent_name": "bench-agent", "input": {"v": "${loop.item}"}, **extra}

    return {
        "name": "bench-loop",
        "start_step": "each",
        "steps": {
            "each": {
                "id": "each",
                "type": "loop",
                "loop_config": {"collection": "${workflow.input.items}", "loop_body": ["fetch", "score"]},
                "next_step": "report",
            },
            "fetch": agent("fetch"),
            "score": agent("score"),
            "report": {"id": "report", "agent_name": "bench-agent", "input": {"all": "${each.output}"}},
        },
    }


def generate(steps: int, logs: int):
    """A failed run with about `steps` step executions and `logs` log entries."""
    from django.utils import timezone

    from agents.models import Agent
    from runs.models import Run, RunLog, StepExecution
    from runs.services import run_plan
    from workflows.services import workflow_create

    Agent.objects.create(name="bench-agent", url="http://127.0.0.1:1/")
    workflow = workflow_create(user=None, definition=definition())
    items = max((steps - 2) // 3, 1)
    start = timezone.now() - timedelta(minutes=30)
    run = Run.objects.create(
        workflow=workflow,
        workflow_name=workflow.name,
        workflow_version=workflow.version,
        plan=run_plan(workflow),
        input_data={"items": list(range(items))},
        status="FAILED",
        error_message="Step 'score' failed in each[17]: agent answered 500",
        started_at=start,
        completed_at=start + timedelta(seconds=items * 2 + 5),
    )

    def row(step_id, at_ms, took_ms, **fields):
        began = start + timedelta(milliseconds=at_ms)
        return StepExecution(
            run=run,
            step_id=step_id,
            agent_name="bench-agent" if fields.get("step_type", "agent") == "agent" else "",
            created_at=began - timedelta(milliseconds=20),
            started_at=began,
            completed_at=began + timedelta(milliseconds=took_ms),
            duration_ms=took_ms,
            status=fields.pop("status", "COMPLETED"),
            input_data={"v": at_ms},
            output_data={"text": f"result at {at_ms} ms", "score": at_ms % 97},
            **fields,
        )

    block = row("each", 0, items * 2000, step_type="loop")
    rows = [block]
    for index in range(items):
        scope, at = f"each[{index}]", index * 2000
        failed = index == 17
        slot = row("each", at, 1900, step_type="iteration", scope=scope, parent=block, iteration=index)
        slot.status = "FAILED" if failed else "COMPLETED"
        rows += [slot, row("fetch", at + 10, 700, scope=scope, parent=slot)]
        if index % 7 == 0:  # a retry: the first try failed, the second waited 300 ms
            rows.append(row("score", at + 720, 100, scope=scope, parent=slot, status="FAILED", error_message="503"))
            rows.append(row("score", at + 1120, 600, scope=scope, parent=slot, try_number=2))
        else:
            status = "FAILED" if failed else "COMPLETED"
            rows.append(row("score", at + 720, 600, scope=scope, parent=slot, status=status))
    rows.append(row("report", items * 2000 + 100, 400))
    StepExecution.objects.bulk_create(rows[:1])
    StepExecution.objects.bulk_create(rows[1:], batch_size=1000)
    RunLog.objects.bulk_create(
        (
            RunLog(
                run=run,
                level="error" if n % 50 == 0 else "info",
                source="executor",
                step_id=("fetch", "score", "each")[n % 3],
                message=f"log line {n}",
                data={"n": n} if n % 5 == 0 else {},
                timestamp=start + timedelta(milliseconds=n * 10),
            )
            for n in range(logs)
        ),
        batch_size=2000,
    )
    return run, len(rows)


def measure(client, path: str, requests: int) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):  # warm-up: template loading, the first plans
        assert client.get(path).status_code == 200, path
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, path
    with CaptureQueriesContext(connection) as queries:
        client.get(path)
    return statistics.median(times), len(queries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000, help="step executions of the run (default 1000)")
    parser.add_argument("--logs", type=int, default=3000, help="log entries of the run (default 3000)")
    parser.add_argument("--requests", type=int, default=9, help="measured requests per page (default 9)")
    parser.add_argument("--db-name", default="wfplatform_bench_run_page")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = f"{base_url().rstrip('/')}/{args.db_name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATA_DIR", f"/tmp/{args.db_name}")
    import django

    recreate_database(args.db_name)
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    try:
        call_command("migrate", verbosity=0)
        run, made = generate(args.steps, args.logs)
        print(f"A run with {made:,} step executions and {args.logs:,} log entries.", flush=True)
        client = Client()
        client.force_login(get_user_model().objects.create_superuser("bench-admin", "", "pw-bench-123456"))
        page = f"/admin/runs/run/{run.pk}/change/"
        pages = [
            ("run page", page),
            ("run page, logs level=error", f"{page}?log_level=error"),
            ("run page, steps FAILED, logs of step score", f"{page}?step_status=FAILED&log_step=score"),
            ("run page, logs page 10", f"{page}?log_page=10"),
        ]
        print(f"\n{'measure':<46} {'target':>10} {'median':>10} {'queries':>8} {'met':>5}")
        failed = 0
        for name, path in pages:
            median, queries = measure(client, path, args.requests)
            met = median <= TARGET_MS
            failed += not met
            figure(
                f"admin {name}, {made:,} step executions (median, in-process)", f"<= {TARGET_MS:.0f} ms", median, "ms"
            )
            print(
                f"{name:<46} {'<= 1000 ms':>10} {median:>7.1f} ms {queries:>8} {'yes' if met else 'NO':>5}", flush=True
            )
        return 1 if failed else 0
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.db_name)


if __name__ == "__main__":
    sys.exit(main_with_figures(main))
