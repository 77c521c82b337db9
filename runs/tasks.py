from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.models import OutboxMessage
from runs.choices import ACTIVE_RUN, LogLevel, LogSource
from runs.counts import run_counts_fold as _run_counts_fold
from runs.idempotency import idempotency_keys_purge as _idempotency_keys_purge
from runs.models import Event, Run
from runs.services import execution_request_enqueue, lease_until, run_log

MAX_RECOVERY_LEASE_SECONDS = 3600


@shared_task
def runs_recover(limit: int = 500) -> int:
    """Re-requests runs that nobody moved on before their lease ran out (lost message, dead executor).

    Not while the run's last request still waits in the outbox (Kafka is away: the outbox sends it
    when it is back), and with a lease that doubles at each re-request, so an outage with many runs
    waiting does not turn into a flood of requests. Returns how many were requested again."""
    now = timezone.now()
    stale = Run.objects.filter(status__in=ACTIVE_RUN, lease_expires_at__lt=now).values_list("pk", flat=True)
    run_ids = list(stale[:limit])
    waiting = set(
        OutboxMessage.objects.filter(
            topic=settings.KAFKA_EXECUTION_TOPIC, sent_at__isnull=True, key__in=[str(run_id) for run_id in run_ids]
        ).values_list("key", flat=True)
    )
    recovered = 0
    for run_id in run_ids:
        with transaction.atomic():
            run = Run.objects.select_for_update().filter(pk=run_id, status__in=ACTIVE_RUN).first()
            if run is None or run.lease_expires_at is None or run.lease_expires_at >= now:
                continue
            if str(run.id) in waiting:
                run.lease_expires_at = lease_until()
                run.save(update_fields=["lease_expires_at", "updated_at"])
                continue
            run.recoveries = (run.recoveries or 0) + 1
            seconds = min(settings.EXECUTOR_LEASE_SECONDS * 2**run.recoveries, MAX_RECOVERY_LEASE_SECONDS)
            run.lease_expires_at = lease_until(seconds)
            run.save(update_fields=["lease_expires_at", "recoveries", "updated_at"])
            run_log(
                run,
                "No progress before the lease expired; execution requested again",
                source=LogSource.EXECUTOR,
                level=LogLevel.WARNING,
                data={"status": run.status, "attempt": run.attempt, "recoveries": run.recoveries},
            )
            execution_request_enqueue(run)
            recovered += 1
    return recovered


@shared_task
def events_purge_old(batch: int = 5000) -> int:
    """Deletes events older than EVENT_RETENTION_DAYS (with the webhook deliveries made from them), a
    batch at a time so no transaction grows with the table. Returns how many went."""
    cutoff = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS)
    total = 0
    while True:
        ids = list(Event.objects.filter(created_at__lt=cutoff).order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            return total
        Event.objects.filter(id__in=ids).delete()
        total += len(ids)


@shared_task
def idempotency_keys_purge() -> int:
    """Deletes execute's Idempotency-Keys older than IDEMPOTENCY_TTL_HOURS (runs/idempotency.py)."""
    return _idempotency_keys_purge()


@shared_task
def run_counts_fold() -> int:
    """Moves the run counters' deltas into their hour and day rows (runs/counts.py)."""
    return _run_counts_fold()
