"""Writes to webhook endpoints and deliveries. Each write records an audit event in its transaction;
the secret never reaches the audit trail."""

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record, diff
from core.errors import Conflict, FieldError, InvalidInput
from core.formats import iso_datetime
from webhooks.addresses import url_problem
from webhooks.choices import MASK, PING, DeliveryStatus
from webhooks.dispatch import deliveries_fail_open, send_after_commit
from webhooks.matching import event_types_problems
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.signing import secret_generate
from workflows.models import Workflow

AUDITED_FIELDS = ("url", "description", "event_types", "workflow_id", "active")


def _snapshot(endpoint: WebhookEndpoint) -> dict:
    values = {field: getattr(endpoint, field) for field in AUDITED_FIELDS}
    values["workflow_id"] = str(endpoint.workflow_id) if endpoint.workflow_id else None
    return values


def _cleaned(data: dict) -> dict:
    """The data with its rules checked (all problems at once, with field paths)."""
    data = dict(data)
    errors: list[FieldError] = []
    if "url" in data:
        problem = url_problem(data["url"])
        if problem:
            errors.append(FieldError("url", problem))
    if "event_types" in data:
        data["event_types"] = list(dict.fromkeys(data["event_types"] or []))  # duplicates say nothing more
        errors += event_types_problems(data["event_types"])
    workflow_id = data.get("workflow_id")
    if workflow_id and not Workflow.objects.live().filter(pk=workflow_id).exists():
        errors.append(FieldError("workflow_id", f"No workflow with id {str(workflow_id)!r}.", "does_not_exist"))
    if errors:
        raise InvalidInput(errors)
    return data


def _audit(user, action: str, endpoint: WebhookEndpoint, changes: dict) -> None:
    audit_record(user=user, action=action, resource_type="webhook", resource_id=endpoint.pk, changes=changes)


def webhook_create(*, user, data: dict) -> WebhookEndpoint:
    """The returned endpoint carries its new secret: show it to the caller this once."""
    data = _cleaned(data)
    username = user.get_username() if user is not None else ""
    endpoint = WebhookEndpoint(**data, secret=secret_generate(), created_by=username, updated_by=username)
    with transaction.atomic():
        endpoint.save()
        _audit(user, "webhook.create", endpoint, diff({}, _snapshot(endpoint)))
    return endpoint


def webhook_update(*, endpoint: WebhookEndpoint, user, data: dict) -> WebhookEndpoint:
    data = _cleaned(data)
    before = _snapshot(endpoint)
    for field, value in data.items():
        setattr(endpoint, field, value)
    changes = diff(before, _snapshot(endpoint))
    if not changes:
        return endpoint
    if endpoint.active:
        endpoint.disabled_reason = ""
    endpoint.updated_by = user.get_username() if user is not None else ""
    with transaction.atomic():
        endpoint.save()
        if "active" in changes and not endpoint.active:
            deliveries_fail_open(endpoint.pk, "The webhook was deactivated.")
        _audit(user, "webhook.update", endpoint, changes)
    return endpoint


def webhook_delete(*, endpoint: WebhookEndpoint, user) -> None:
    """Soft delete: the endpoint and its deliveries stay for the record; nothing more is sent."""
    with transaction.atomic():
        endpoint.deleted_at = timezone.now()
        endpoint.updated_by = user.get_username() if user is not None else ""
        endpoint.save(update_fields=["deleted_at", "updated_by", "updated_at"])
        deliveries_fail_open(endpoint.pk, "The webhook was deleted.")
        _audit(user, "webhook.delete", endpoint, {"deleted_at": [None, iso_datetime(endpoint.deleted_at)]})


def webhook_rotate_secret(*, endpoint: WebhookEndpoint, user) -> WebhookEndpoint:
    """A new secret at once: every attempt from now on is signed with it (retries of older deliveries too)."""
    endpoint.secret = secret_generate()
    endpoint.updated_by = user.get_username() if user is not None else ""
    with transaction.atomic():
        endpoint.save(update_fields=["secret", "updated_by", "updated_at"])
        _audit(user, "webhook.rotate_secret", endpoint, {"secret": [MASK, MASK]})
    return endpoint


def webhook_test(*, endpoint: WebhookEndpoint, user) -> Delivery:
    """Queues a `ping` to this endpoint alone (also when it is inactive: testing comes first)."""
    now = timezone.now()
    body = {"type": PING, "timestamp": iso_datetime(now), "data": {"webhook_id": str(endpoint.pk)}}
    with transaction.atomic():
        delivery = Delivery.objects.create(endpoint=endpoint, event_type=PING, payload=body, next_attempt_at=now)
        _audit(user, "webhook.test", endpoint, {"delivery_id": [None, str(delivery.pk)]})
        send_after_commit()
    return delivery


def delivery_redeliver(*, delivery: Delivery, user) -> Delivery:
    """Sends the delivery again (same webhook-id, a new attempt), with a fresh retry schedule."""
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update(of=("self",)).select_related("endpoint").get(pk=delivery.pk)
        if delivery.status == DeliveryStatus.SENDING:
            raise Conflict("This delivery is being sent right now; look again in a moment.")
        if not delivery.endpoint.active and delivery.event_type != PING:
            raise Conflict("The webhook is inactive; activate it to redeliver.")
        previous = delivery.status
        delivery.status = DeliveryStatus.PENDING
        delivery.tries = 0
        delivery.next_attempt_at = timezone.now()
        delivery.completed_at = None
        delivery.save(update_fields=["status", "tries", "next_attempt_at", "completed_at"])
        audit_record(
            user=user,
            action="webhook.redeliver",
            resource_type="webhook_delivery",
            resource_id=delivery.pk,
            changes={"status": [previous, DeliveryStatus.PENDING]},
        )
        send_after_commit()
    return delivery
