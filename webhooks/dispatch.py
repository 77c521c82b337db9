"""Deliveries: made from events in the transaction of the change, sent by Celery after the commit.

`deliveries_create` is the event sink (registered in WebhooksConfig.ready()): one row per matching
active endpoint, inserted in bulk beside the events. After the commit one Celery task is asked to send
(a burst of commits asks once, as the outbox relay does). `deliveries_send_due` claims due rows with
row locks that skip what another worker holds, sends them from a small thread pool and records each
attempt; failures retry on the Standard Webhooks schedule and the beat sweep sends them when due.
A delivery waits while an earlier delivery of its run to its endpoint is still open, so each receiver
sees a run's events in order.
"""

import json
import logging
import random
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from audit.services import audit_record
from core.versions import kept
from webhooks import sender
from webhooks.choices import OPEN_DELIVERY, PING, RETRY_JITTER, RETRY_SCHEDULE, DeliveryStatus
from webhooks.matching import subscribed
from webhooks.models import Delivery, DeliveryAttempt, WebhookEndpoint

log = logging.getLogger(__name__)

SEND_REQUESTED = "webhooks:send-requested"
SEND_REQUEST_TTL = 2  # seconds; should a queued task be lost, the next commit asks again after this
# A claimed delivery is its worker's for two timeouts (it may wait for a thread up to one, then be sent
# within another) plus this; a worker that died meanwhile loses it to the next claim.
CLAIM_MARGIN_SECONDS = 30
# One task stops claiming after this and queues a successor, so that other tasks (the outbox relay)
# get the worker process in between.
TASK_BUDGET_SECONDS = 10
# How often a task whose requests are all in flight looks for newly due rows.
POLL_SECONDS = 0.2
# After the first answer of a round, how long to wait for more before recording them together.
GATHER_SECONDS = 0.01


def active_endpoints() -> list[WebhookEndpoint]:
    return list(WebhookEndpoint.objects.live().filter(active=True).only("id", "event_types", "workflow_id"))


def deliveries_create(events) -> None:
    """The event sink: runs inside the transaction that inserted `events`."""
    endpoints = kept("webhooks_webhookendpoint", "active", active_endpoints)
    if not endpoints:
        return
    now = timezone.now()
    rows = [
        Delivery(endpoint_id=endpoint.id, event=event, event_type=event.type, run_id=event.run_id, next_attempt_at=now)
        for event in events
        for endpoint in endpoints
        if subscribed(endpoint.event_types, event.type)
        and (endpoint.workflow_id is None or endpoint.workflow_id == event.workflow_id)
    ]
    if rows:
        Delivery.objects.bulk_create(rows)
        send_after_commit()


def send_after_commit() -> None:
    """Asks a worker to send once the surrounding transaction commits (once per transaction)."""
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(func is _request_send for _, func, *_ in connection.run_on_commit):
        return
    transaction.on_commit(_request_send)


def _request_send() -> None:
    try:
        # One queued task covers every row committed before it starts (it clears the flag first).
        if cache.add(SEND_REQUESTED, True, timeout=SEND_REQUEST_TTL):
            webhook_deliveries_send.delay()
    except Exception:  # noqa: BLE001 - the rows are committed; the beat sweep sends them when Celery is back
        log.warning("could not ask Celery to send webhooks; the periodic sweep will", exc_info=True)


def deliveries_fail_open(endpoint_id, reason: str) -> int:
    """Fails the deliveries of an endpoint that wait for an attempt (deactivated, deleted, gone).
    One being sent right now finishes its attempt; should it need another, its next claim fails it."""
    now = timezone.now()
    return Delivery.objects.filter(
        endpoint_id=endpoint_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]
    ).update(status=DeliveryStatus.FAILED, next_attempt_at=None, completed_at=now, last_error=reason)


def _claim(limit: int, busy: Counter) -> list[Delivery]:
    """Takes up to `limit` due deliveries for this worker, at most half its threads' worth per endpoint
    (`busy` counts what it holds), so that one slow receiver cannot hold up all the others."""
    now = timezone.now()
    per_endpoint = max(1, settings.WEBHOOK_MAX_IN_FLIGHT // 2)
    saturated = [endpoint for endpoint, count in busy.items() if count >= per_endpoint]
    earlier_open = Delivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        run_id=OuterRef("run_id"),
        event_id__lt=OuterRef("event_id"),
        status__in=OPEN_DELIVERY,
    )
    with transaction.atomic():
        due = (
            Delivery.objects.filter(status__in=OPEN_DELIVERY, next_attempt_at__lte=now)
            .exclude(endpoint_id__in=saturated)
            .filter(~Exists(earlier_open))
            .select_related("endpoint", "event")
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("next_attempt_at")[:limit]
        )
        taken, refused = [], []
        for delivery in due:
            endpoint = delivery.endpoint
            if endpoint.deleted_at or (not endpoint.active and delivery.event_type != PING):
                refused.append(delivery.pk)
            elif busy[endpoint.pk] < per_endpoint:
                busy[endpoint.pk] += 1
                taken.append(delivery)
        lease = now + timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT_SECONDS + CLAIM_MARGIN_SECONDS)
        claimed = Delivery.objects.filter(pk__in=[delivery.pk for delivery in taken])
        claimed.update(status=DeliveryStatus.SENDING, next_attempt_at=lease)
        Delivery.objects.filter(pk__in=refused).update(
            status=DeliveryStatus.FAILED, next_attempt_at=None, completed_at=now, last_error="The webhook is inactive."
        )
    return taken


def _send(delivery: Delivery) -> sender.Outcome:
    """In a pool thread: HTTP only, no database (the rows it needs came with the claim)."""
    try:
        body = json.dumps(delivery.body(), separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:  # cannot happen for rows we wrote; never let it stop the loop
        log.exception("webhook delivery %s: body not serializable", delivery.pk)
        return sender.Outcome(sender.FAIL, timezone.now(), 0, error=f"Body not serializable: {exc}")
    endpoint = delivery.endpoint
    return sender.attempt(url=endpoint.url, secret=endpoint.secret, msg_id=str(delivery.pk), body=body)


def retry_delay(tries: int, retry_after: int | None = None) -> float:
    """Seconds before the next attempt, after `tries` failed ones (a Retry-After may only lengthen it)."""
    delay = RETRY_SCHEDULE[tries] * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)
    if retry_after:
        delay = max(delay, min(retry_after, RETRY_SCHEDULE[-1]))
    return delay


def _apply(delivery: Delivery, outcome: sender.Outcome, now) -> dict:
    """The delivery's new state after one attempt (its counters move in the UPDATE itself)."""
    delivery.attempt_count += 1
    delivery.tries += 1
    kind, error = outcome.kind, outcome.error
    if kind == sender.RETRY and delivery.event_type == PING:
        kind = sender.FAIL  # a test: the answer is what matters, not getting through eventually
    elif kind == sender.RETRY and delivery.tries >= len(RETRY_SCHEDULE):
        kind, error = sender.FAIL, f"{error}; gave up after {delivery.tries} attempts."
    state = {"last_status_code": outcome.status_code, "last_error": error, "kind": kind}
    if kind == sender.RETRY:
        delay = retry_delay(delivery.tries, outcome.retry_after)
        return {**state, "status": DeliveryStatus.RETRYING, "next_attempt_at": now + timedelta(seconds=delay)}
    status = DeliveryStatus.SUCCEEDED if kind == sender.OK else DeliveryStatus.FAILED
    return {**state, "status": status, "next_attempt_at": None, "completed_at": now}


def _record(results: list[tuple[Delivery, sender.Outcome]]) -> None:
    """Writes the attempts and the deliveries' new states: one UPDATE per distinct new state (under load
    nearly all of a batch succeeded alike), not one per row."""
    now = timezone.now()
    attempts, groups, gone = [], {}, set()
    for delivery, outcome in results:
        state = _apply(delivery, outcome, now)
        if state.pop("kind") == sender.GONE:
            gone.add(delivery.endpoint_id)
        if state["status"] == DeliveryStatus.FAILED:
            log.warning("webhook delivery %s failed: %s", delivery.pk, state["last_error"])
        groups.setdefault(tuple(sorted(state.items())), []).append(delivery.pk)
        attempts.append(
            DeliveryAttempt(
                delivery=delivery,
                number=delivery.attempt_count,
                attempted_at=outcome.attempted_at,
                status_code=outcome.status_code,
                duration_ms=outcome.duration_ms,
                response_body=outcome.response_body,
                error=outcome.error,
            )
        )
    with transaction.atomic():
        DeliveryAttempt.objects.bulk_create(attempts)
        for state, ids in groups.items():
            # Rows still being sent only: one that another worker finished after our claim lapsed (we
            # stalled past the timeout and the margin) keeps what that worker recorded.
            Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.SENDING).update(
                **dict(state), last_attempt_at=now, attempt_count=F("attempt_count") + 1, tries=F("tries") + 1
            )
        for endpoint_id in gone:
            _endpoint_gone(endpoint_id)


def _endpoint_gone(endpoint_id) -> None:
    reason = f"Disabled at {timezone.now():%Y-%m-%d %H:%M:%S} UTC: the receiver answered 410 Gone."
    if WebhookEndpoint.objects.filter(pk=endpoint_id, active=True).update(active=False, disabled_reason=reason):
        failed = deliveries_fail_open(endpoint_id, "The receiver answered 410 Gone; the webhook is disabled.")
        audit_record(
            user=None,
            action="webhook.disable",
            resource_type="webhook",
            resource_id=endpoint_id,
            changes={"active": [True, False], "disabled_reason": ["", reason]},
        )
        log.warning("webhook %s disabled (410 Gone); %d pending deliveries failed", endpoint_id, failed)


def deliveries_send_due(*, budget_seconds: float = TASK_BUDGET_SECONDS) -> int:
    """Sends what is due until nothing is, or the budget is spent. Returns how many attempts were made."""
    slots = settings.WEBHOOK_MAX_IN_FLIGHT
    busy: Counter = Counter()
    attempts = 0
    stop_claiming = time.monotonic() + budget_seconds
    with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="webhook") as pool:
        in_flight: dict = {}  # sending, or queued in the pool for the next free thread
        while True:
            # Up to twice as many as there are threads, so threads never wait for this loop's database
            # work. A queued delivery starts within one timeout (every attempt ends by then).
            if len(in_flight) <= slots and time.monotonic() < stop_claiming:
                for delivery in _claim(2 * slots - len(in_flight), busy):
                    in_flight[pool.submit(_send, delivery)] = delivery
            if not in_flight:
                break
            done, pending = wait(in_flight, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            if done and pending:  # one write and one claim for several answers: far cheaper than one each
                done |= wait(pending, timeout=GATHER_SECONDS)[0]
            results = [(in_flight.pop(future), future.result()) for future in done]
            for delivery, _ in results:
                busy[delivery.endpoint_id] -= 1
            if results:
                _record(results)
                attempts += len(results)
    if time.monotonic() >= stop_claiming:
        _request_send()  # there may be more: a successor task carries on after the queue's other work
    return attempts


# Celery discovers these through webhooks/tasks.py; they are defined here, next to what they call.
@shared_task(name="webhooks.tasks.webhook_deliveries_send")
def webhook_deliveries_send() -> int:
    """Right after a commit that made deliveries: send what is due."""
    cache.delete(SEND_REQUESTED)  # before reading: a commit from now on asks for another task
    return deliveries_send_due()


@shared_task(name="webhooks.tasks.webhook_deliveries_sweep")
def webhook_deliveries_sweep() -> int:
    """Periodic: retries that came due, and deliveries whose worker died or whose task was lost."""
    return deliveries_send_due()
