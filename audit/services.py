"""Writing the audit trail. Call `audit_record` inside the transaction that makes the change."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from core.db import rows_insert
from core.middleware import current_context

PURGE_BATCH = 5_000


def audit_record(
    *, user, action: str, resource_type: str, resource_id, changes: dict | None = None, input_data=None
) -> AuditEvent:
    event = audit_event(
        user=user,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        changes=changes,
        input_data=input_data,
    )
    rows_insert([event])  # an insert, as save() would make: audit events are append-only
    return event


def audit_event(
    *, user, action: str, resource_type: str, resource_id, changes: dict | None = None, input_data=None
) -> AuditEvent:
    """The audit event `audit_record` inserts, unsaved: for a caller that inserts it with its other rows."""
    context = current_context()
    username = user.get_username() if user is not None and user.is_authenticated else ""
    event = AuditEvent(
        user=username,
        api_key_prefix=context.api_key_prefix or "",
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id),
        changes=changes or {},
        input_data=input_data,
        request_id="" if context.request_id == "-" else context.request_id,
        ip=context.ip,
    )
    return event


def diff(before: dict, after: dict) -> dict:
    """{field: [old, new]} for the fields whose values differ."""
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def audit_purge(*, dry_run: bool = False, now=None) -> int:
    """Deletes events older than AUDIT_RETENTION_DAYS, in batches so no lock is held for long."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    old = AuditEvent.objects.filter(created_at__lt=cutoff)
    if dry_run:
        return old.count()
    deleted = 0
    while True:
        with transaction.atomic():
            batch = list(old.order_by().values_list("pk", flat=True)[:PURGE_BATCH])
            if not batch:
                return deleted
            # QuerySet.delete bypasses the model's delete(), which refuses single deletions.
            deleted += AuditEvent.objects.filter(pk__in=batch).delete()[0]
