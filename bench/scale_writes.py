"""What the run counters cost writers (docs/performance.md, "Runs list at 10 million runs").

    .venv/bin/python bench/scale_writes.py [--seconds 10] [--threads 4]

In a fresh PostgreSQL database: `--threads` threads each create a run and move it PENDING -> RUNNING
-> COMPLETED through `run_transition` (three transactions, each with its event, log entry and
outbox message, as the engine writes them), for `--seconds`, first with the counter triggers of
migration 0012 disabled, then enabled, then enabled with a fold every second alongside. Prints runs/s
and transactions/s of each, and checks that the counters equal COUNT(*) at the end.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Bench, SetupError, django_setup  # noqa: E402

MODES = ("triggers off", "triggers on", "triggers on + fold every 1 s")


def writer(workflow, stop: threading.Event, done: list) -> None:
    from django.db import connection, transaction

    from runs.choices import LogSource, RunStatus
    from runs.models import Run
    from runs.services import run_plan, run_transition

    count = 0
    try:
        while not stop.is_set():
            with transaction.atomic():
                run = Run.objects.create(
                    workflow=workflow,
                    workflow_name=workflow.name,
                    workflow_version=1,
                    plan=run_plan(workflow),
                    input_data={"n": count},
                )
            for status in (RunStatus.RUNNING, RunStatus.COMPLETED):
                with transaction.atomic():
                    run = Run.objects.select_for_update().get(pk=run.pk)
                    run_transition(run, status, source=LogSource.EXECUTOR, output={"ok": True})
            count += 1
    finally:
        done.append(count)
        connection.close()


def folder(stop: threading.Event) -> None:
    from django.db import connection

    from runs.counts import run_counts_fold

    while not stop.wait(1.0):
        run_counts_fold()
    connection.close()


def measure(seconds: float, threads: int) -> None:
    django_setup()
    from django.db import connection

    from runs.counts import run_counts_fold, run_counts_rebuild, run_total
    from runs.models import Run
    from workflows.models import Workflow

    workflows = [
        Workflow.objects.create(name=f"writes-{i}", definition={"name": f"writes-{i}", "start_step": "a", "steps": {}})
        for i in range(threads)
    ]
    for mode in MODES:
        with connection.cursor() as cursor:
            action = "DISABLE" if mode == "triggers off" else "ENABLE"
            for trigger in ("runs_run_count_write", "runs_run_count_move"):
                cursor.execute(f"ALTER TABLE runs_run {action} TRIGGER {trigger}")
        stop, done = threading.Event(), []
        workers = [threading.Thread(target=writer, args=(w, stop, done)) for w in workflows]
        if "fold" in mode:
            workers.append(threading.Thread(target=folder, args=(stop,)))
        started = time.perf_counter()
        for thread in workers:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in workers:
            thread.join()
        elapsed = time.perf_counter() - started
        runs = sum(done)
        rates = f"{runs / elapsed:>7.1f} runs/s  {3 * runs / elapsed:>7.1f} transactions/s"
        print(f"{mode:<30} {rates}  ({threads} threads)")

    run_counts_fold()
    counted = run_total()
    run_counts_rebuild()  # the runs written with the triggers off were never counted
    print(f"counters after the fold: {counted} of {Run.objects.count()} runs (the first mode wrote uncounted ones)")
    print(f"after run_counts_rebuild: {run_total()} == COUNT(*) {Run.objects.count()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the Django subprocess
    args = parser.parse_args()
    if args.measure:
        measure(args.seconds, args.threads)
        return 0
    with Bench("wfplatform_scale_writes") as bench:
        try:
            bench.prepare_database()
            bench.seed(Path(__file__), "--measure", "--seconds", str(args.seconds), "--threads", str(args.threads))
            return 0
        except SetupError as exc:
            print(f"setup failed: {exc}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
