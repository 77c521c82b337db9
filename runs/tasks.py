from celery import shared_task
from django.db import transaction
from django.utils import timezone

from runs.choices import ACTIVE_RUN, LogLevel, LogSource
from runs.models import Run
from runs.services import execution_request_enqueue, lease_until, run_log


@shared_task
def runs_recover(limit: int = 500) -> int:
    """Re-requests runs that nobody moved on before their lease ran out (lost message, dead executor)."""
    now = timezone.now()
    stale = Run.objects.filter(status__in=ACTIVE_RUN, lease_expires_at__lt=now).values_list("pk", flat=True)
    recovered = 0
    for run_id in list(stale[:limit]):
        with transaction.atomic():
            run = Run.objects.select_for_update().filter(pk=run_id, status__in=ACTIVE_RUN).first()
            if run is None or run.lease_expires_at is None or run.lease_expires_at >= now:
                continue
            run.lease_expires_at = lease_until()
            run.save(update_fields=["lease_expires_at", "updated_at"])
            run_log(
                run,
                "No progress before the lease expired; execution requested again",
                source=LogSource.EXECUTOR,
                level=LogLevel.WARNING,
                data={"status": run.status, "attempt": run.attempt},
            )
            execution_request_enqueue(run)
            recovered += 1
    return recovered
