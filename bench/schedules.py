"""Benchmark the scheduler: 1,000 schedules due every minute, started by two beat and two worker processes.

What it does (PostgreSQL on 127.0.0.1:5432 with trust auth, Redis on 127.0.0.1:6379)

    1. A fresh database (``bench_schedules``, dropped afterwards unless ``--keep-db``), migrated.
    2. ``--schedules`` schedules with the cron ``* * * * *`` on a one-step workflow (services, as the API
       makes them).
    3. Two Celery workers (``--worker-concurrency`` prefork processes each) and two beat processes, all on
       the Redis database ``--celery-redis`` (flushed first). Both beats send ``schedules_tick`` every
       SCHEDULE_TICK_SECONDS, as two beat processes deployed by mistake would; every worker may claim.
       There is no Kafka here: the runs' outbox rows are written but not relayed (the workers run with
       the relay request switched off), so the figures are those of the scheduler itself.
    4. For ``--minutes`` due minutes: waits until every schedule has a fire for that minute, then prints
       how late each run started (run ``created_at`` minus the due time: median, p95, max; target: all
       within 5 s) and checks that each schedule got exactly one run per due time. Exit code 1 when a
       check fails.

How to run (from the project root)::

    .venv/bin/python bench/schedules.py [--schedules 1000] [--minutes 2] [--worker-concurrency 2]
                                        [--celery-redis redis://127.0.0.1:6379/12] [--keep-db]
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, base_url, drop_database, figure, main_with_figures, recreate_database  # noqa: E402

TARGET_SECONDS = 5.0


def worker_main(concurrency: int) -> None:
    """A Celery worker whose runs do not ask for an outbox relay (there is no Kafka to relay to)."""
    import django

    django.setup()
    import core.outbox

    core.outbox._notify_worker = lambda: None
    from config.celery import app

    app.worker_main(
        ["worker", "--loglevel", "WARNING", "--concurrency", str(concurrency), "--pool", "prefork", "--without-gossip"]
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(q * len(ordered) + 0.5)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1000, help="schedules due every minute (default 1000)")
    parser.add_argument("--minutes", type=int, default=2, help="due minutes to measure (default 2)")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="processes per worker (default 2)")
    parser.add_argument("--celery-redis", default="redis://127.0.0.1:6379/12", help="broker and cache")
    parser.add_argument("--db-name", default="bench_schedules")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # internal: be a worker
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker)
        return 0

    database_url = f"{base_url()}/{args.db_name}"
    data_dir = tempfile.mkdtemp(prefix="bench-schedules-")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": args.celery_redis,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
        "KAFKA_BOOTSTRAP_SERVERS": "",
        # Only the schedules' tick matters here; keep the other sweeps out of the figures.
        "OUTBOX_SWEEP_SECONDS": "3600",
        "RUN_RECOVERY_SECONDS": "3600",
        "WEBHOOK_SWEEP_SECONDS": "3600",
        "DATA_DIR": data_dir,
    }
    processes: list[subprocess.Popen] = []
    logs = Path(data_dir)
    created = False
    ok = True
    try:
        recreate_database(args.db_name)
        created = True
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"database: {database_url} (recreated, migrated)")
        import redis

        redis.Redis.from_url(args.celery_redis).flushdb()

        os.environ.update(env)
        import django

        django.setup()
        from django.db.models import F

        from runs.models import Run
        from schedules.models import Schedule, ScheduleFire
        from schedules.services import schedule_create
        from tests.runs.helpers import workflow_with_agents

        workflow = workflow_with_agents("bench-agent", name="bench-schedules")
        started = time.monotonic()
        for index in range(args.schedules):
            data = {
                "name": f"bench-{index:05d}",
                "workflow_id": workflow.pk,
                "cron": "* * * * *",
                "input_data": {"text": str(index)},
            }
            schedule_create(user=None, data=data)
        print(f"{args.schedules} schedules '* * * * *' created in {time.monotonic() - started:.1f} s")

        # All due at the same minute, far enough ahead for the workers to be up.
        first_due = (datetime.now(UTC) + timedelta(seconds=80)).replace(second=0, microsecond=0)
        Schedule.objects.update(next_run_at=first_due)
        for number in range(2):
            log = (logs / f"worker{number}.log").open("w")
            cmd = [sys.executable, __file__, "--worker", str(args.worker_concurrency)]
            processes.append(
                subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )
        for number in range(2):
            beat_env = {**env, "DATA_DIR": f"{data_dir}/beat{number}"}  # each beat its own schedule file
            cmd = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING"]
            processes.append(
                subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    env=beat_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        print(f"2 workers (-c {args.worker_concurrency}) and 2 beats on {args.celery_redis}")

        for minute in range(args.minutes):
            due = first_due + timedelta(minutes=minute)
            deadline = due + timedelta(seconds=60)
            while datetime.now(UTC) < deadline:
                if ScheduleFire.objects.filter(due_at=due).count() >= args.schedules:
                    break
                time.sleep(0.5)
            fires = ScheduleFire.objects.filter(due_at=due, run__isnull=False)
            lates = [
                (created_at - due_at).total_seconds()
                for created_at, due_at in fires.annotate(created=F("run__created_at")).values_list("created", "due_at")
            ]
            count = len(lates)
            line = f"due {due:%H:%M:%S}Z: {count}/{args.schedules} runs started"
            if lates:
                line += (
                    f", late by median {statistics.median(lates):.2f} s, p95 {pct(lates, 0.95):.2f} s,"
                    f" max {max(lates):.2f} s"
                )
            print(line)
            if count != args.schedules or not lates or max(lates) > TARGET_SECONDS:
                ok = False
        time.sleep(3)  # anything late or doubled would show now
        runs = Run.objects.count()
        fires = ScheduleFire.objects.filter(run__isnull=False).count()
        doubled = runs - fires
        print(f"runs {runs}, fires {fires} (one per schedule and due time), doubled: {doubled}")
        ok = ok and doubled == 0
        figure(
            "schedules: runs doubled (and all on time)",
            f"0, all within {TARGET_SECONDS:.0f} s",
            doubled,
            "runs",
            met=ok,
        )
        print(
            f"target: every run within {TARGET_SECONDS:.0f} s of its due time, none doubled: "
            f"{'met' if ok else 'NOT met'}"
        )
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if created and not args.keep_db:
            from django.db import connections

            connections.close_all()
            drop_database(args.db_name)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main_with_figures(main))
