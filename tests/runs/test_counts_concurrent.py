"""The runs list's totals stay exact while runs are created and moved and the counters are folded,
all at once from several threads (PostgreSQL: the counters are a trigger and a fold there)."""

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from runs.choices import RunStatus
from runs.counts import run_counts_fold, run_total
from runs.models import Run
from runs.services import run_cancel, run_execute, run_retry
from tests.runs.helpers import workflow_with_agents

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the run counters are PostgreSQL's"),
]
WRITERS, RUNS_EACH = 3, 12


def count(params) -> int:
    runs = Run.objects.all()
    if "statuses" in params:
        runs = runs.filter(status__in=params["statuses"])
    if "workflow_id" in params:
        runs = runs.filter(workflow_id=params["workflow_id"])
    if "created_after" in params:
        runs = runs.filter(created_at__gte=params["created_after"])
    return runs.count()


def in_thread(work, errors):
    def body():
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
            errors.append(repr(exc))
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def test_totals_equal_count_under_concurrent_writes_and_folds(viewer):
    workflows = [workflow_with_agents("a", name="first"), workflow_with_agents("b", name="second")]
    # An edge inside the current hour, so the answer mixes counters, deltas and counted rows.
    since = timezone.now() - timedelta(minutes=20)
    checks = [{}, {"statuses": ["PENDING"]}, {"workflow_id": workflows[0].id, "statuses": ["CANCELLED", "FAILED"]}]
    checks += [{"created_after": since, "statuses": ["PENDING", "CANCELLED"]}]
    done, errors, mismatches, reads = threading.Event(), [], [], []

    def write(index):
        for number in range(RUNS_EACH):
            run = run_execute(workflow=workflows[(index + number) % 2], input_data={"text": "x"}, user=None)
            if number % 3 == 0:
                run_retry(run=run_cancel(run=run, user=None), user=None)  # PENDING -> CANCELLED -> PENDING
            elif number % 3 == 1:
                run_cancel(run=run, user=None)
            else:
                Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)

    def fold():
        while not done.is_set():
            run_counts_fold()

    def read():
        # One snapshot for both (REPEATABLE READ): the counters' answer must equal COUNT(*) at every moment.
        while not done.is_set():
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                for params in checks:
                    got, want = run_total(**params), count(params)
                    reads.append(1)
                    if got != want:
                        mismatches.append((params, got, want))

    helpers = [in_thread(fold, errors), in_thread(read, errors)]
    writers = [in_thread(lambda i=i: write(i), errors) for i in range(WRITERS)]
    for thread in writers:
        thread.join()
    done.set()
    for thread in helpers:
        thread.join()

    assert not errors and not mismatches, (errors, mismatches[:5])
    assert len(reads) > len(checks)  # the reader ran while the writers wrote
    assert Run.objects.count() == WRITERS * RUNS_EACH
    for params in checks:
        parts = ["page_size=1"]
        if "statuses" in params:
            parts.append("status=" + ",".join(params["statuses"]))
        if "workflow_id" in params:
            parts.append(f"workflow_id={params['workflow_id']}")
        if "created_after" in params:
            parts.append("created_after=" + params["created_after"].isoformat().replace("+00:00", "Z"))
        assert viewer.get("/api/v1/runs?" + "&".join(parts)).json()["total"] == count(params), params
