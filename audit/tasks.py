from celery import shared_task

from audit.services import audit_purge


@shared_task
def audit_purge_old() -> int:
    return audit_purge()
