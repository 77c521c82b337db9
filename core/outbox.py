"""The transactional outbox: write messages with the change, send them to Kafka after commit.

`outbox_enqueue` runs inside the caller's transaction. Web requests then ask Celery to relay (the
response never waits on Kafka); the executor relays its own rows right after its commit. Rows that
could not be sent stay pending and `outbox_sweep` (Celery beat) retries them with backoff.
"""

import contextlib
import contextvars
import logging
from collections.abc import Callable
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kafka.errors import MessageSizeTooLargeError

from core import kafka, tracing
from core.collect import collecting
from core.db import rows_insert
from core.models import OutboxMessage

log = logging.getLogger(__name__)


def send_window() -> timedelta:
    """The longest a relay may take to send a row: the producer's delivery timeout (three times the
    send timeout, core/kafka.py) and a margin. A row's writer (the executor relays its own rows) and a
    sweep (which claims the rows it takes) are given this long before anyone else may send the row,
    so a slow broker never has the same row sent twice."""
    return timedelta(seconds=settings.KAFKA_SEND_TIMEOUT_SECONDS * 3 + 5)


SENT_RETENTION = timedelta(days=1)
RELAY_REQUESTED = "outbox:relay-requested"
RELAY_REQUEST_TTL = 2  # seconds; should a queued relay be lost, the next commit asks again after this

# topic -> what to do when a message to it is dead: the layer that wrote it knows what it meant
# (runs fail the step whose task never went); registered in the apps' ready().
_dead_handlers: dict[str, Callable[[OutboxMessage, str], None]] = {}

_collector: contextvars.ContextVar[list | None] = contextvars.ContextVar("outbox_collector", default=None)
_worker_relays: contextvars.ContextVar[bool] = contextvars.ContextVar("outbox_worker_relays", default=False)


@contextlib.contextmanager
def outbox_collect(*, worker: bool = False):
    """Inside this block, enqueued messages are gathered, unsaved, for the caller to insert in one go
    (`rows_insert`) before its commit and to relay itself after it; with `worker`, the caller only
    inserts them: they are due at once and a Celery worker is asked to relay them after the commit,
    as for a message enqueued outside a block (the execute endpoint: its inserts in one round trip)."""
    token = _worker_relays.set(worker)
    try:
        with collecting(_collector) as collected:
            yield collected
    finally:
        _worker_relays.reset(token)


def outbox_on_dead(topic: str, handler: Callable[[OutboxMessage, str], None]) -> None:
    """Calls `handler(message, error)` after the commit that marks a message to `topic` dead, so
    what waits for it ends with the reason instead of waiting for a deadline."""
    _dead_handlers[topic] = handler


def _dead_handle(message: OutboxMessage, error: str) -> None:
    handler = _dead_handlers.get(message.topic)
    if handler is None:
        return
    try:
        handler(message, error)
    except Exception:  # noqa: BLE001 - the row stays dead and visible; deadlines still end its run
        log.exception("outbox: the handler of dead message %s to %s failed", message.id, message.topic)


def outbox_enqueue(*, topic: str, key: str, payload: dict) -> OutboxMessage:
    """Adds a message to send once the surrounding transaction commits.

    A Celery worker is asked to relay right after commit, unless the caller collects the messages
    (`outbox_collect`) to relay them itself, as the executor does.
    """
    collected = _collector.get()
    notify = collected is None or _worker_relays.get()
    # Rows the writer relays itself are left alone by the worker for a while (no double sends).
    due = timezone.now() + (timedelta(0) if notify else send_window())
    message = OutboxMessage(topic=topic, key=key, payload=payload, next_attempt_at=due, trace_context=tracing.carrier())
    if collected is None:
        rows_insert([message])
    else:
        collected.append(message)
    if notify and not _notify_pending():
        transaction.on_commit(_notify_worker)
    return message


def _notify_pending() -> bool:
    """Whether this transaction already asks a worker to relay (one request covers all its rows)."""
    connection = transaction.get_connection()
    return connection.in_atomic_block and any(func is _notify_worker for _, func, *_ in connection.run_on_commit)


def _notify_worker() -> None:
    try:
        # One queued relay covers every row committed before it starts (it clears the flag first),
        # so under load most commits need no task of their own.
        if not cache.add(RELAY_REQUESTED, True, timeout=RELAY_REQUEST_TTL):
            return
        outbox_relay_task.delay()
    except Exception:  # noqa: BLE001 - the row is committed; the sweep sends it when Celery is back
        log.warning("could not ask Celery to relay the outbox; the periodic sweep will send it", exc_info=True)


def outbox_relay(messages: list[OutboxMessage]) -> int:
    """Sends the given messages, marks the ones Kafka acknowledged; the others back off. Returns how many went."""
    if not messages:
        return 0
    sent, failed, error = [], [], ""
    errors: dict[int, str] = {}
    hopeless: set[int] = set()  # a message Kafka will never take (too large): no retry
    try:
        producer = kafka.producer()
        futures = []
        for message in messages:
            try:  # one by one: a message refused at once must not hold back the others
                futures.append((message, _send(producer, message)))
            except MessageSizeTooLargeError as exc:  # over max_request_size: it will never go
                failed.append(message)
                errors[message.id] = f"{type(exc).__name__}: {exc}"
                hopeless.add(message.id)
        producer.flush(timeout=settings.KAFKA_SEND_TIMEOUT_SECONDS)
        for message, future in futures:
            try:
                future.get(timeout=settings.KAFKA_SEND_TIMEOUT_SECONDS)
                sent.append(message.id)
            except Exception as exc:  # noqa: BLE001 - any send error means: retry later
                failed.append(message)
                errors[message.id] = error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - no broker, not configured, ...
        error = f"{type(exc).__name__}: {exc}"
        failed = [m for m in messages if m.id not in hopeless]
    now = timezone.now()
    dead_rows: list[OutboxMessage] = []
    if sent:
        OutboxMessage.objects.filter(id__in=sent).update(sent_at=now, attempts=F("attempts") + 1, last_error="")
    for message in failed:
        delay = min(2 ** min(message.attempts, 16), settings.OUTBOX_MAX_BACKOFF_SECONDS)
        # Dead after too many tries or when it can never go: shown in the admin, no longer retried.
        dead = message.id in hopeless or message.attempts + 1 >= settings.OUTBOX_MAX_ATTEMPTS
        OutboxMessage.objects.filter(id=message.id, sent_at__isnull=True).update(
            attempts=F("attempts") + 1,
            last_error=errors.get(message.id, error)[:2000],
            next_attempt_at=now + timedelta(seconds=delay),
            dead_at=now if dead else None,
        )
        if dead:
            log.error("outbox: message %s to %s is dead: %s", message.id, message.topic, errors.get(message.id, error))
            dead_rows.append(message)
    if failed:
        kafka.producer_reset()  # start the next attempt from a fresh connection
    if len(failed) > len(dead_rows):
        log.warning("outbox: %d message(s) not sent, will retry: %s", len(failed) - len(dead_rows), error)
    for message in dead_rows:
        _dead_handle(message, errors.get(message.id, error))
    return len(sent)


def _send(producer, message: OutboxMessage):
    """Sends one row; its trace context (the writer's) goes along as Kafka headers, under a PRODUCER span."""
    if not tracing.enabled() or not message.trace_context:
        return producer.send(message.topic, key=message.key, value=message.payload)
    attributes = {"messaging.system": "kafka", "messaging.destination.name": message.topic, "outbox.id": message.id}
    attributes.update(tracing.attributes_of(message.payload))
    name = f"send {message.topic}"
    with tracing.span(name, kind=tracing.SpanKind.PRODUCER, attributes=attributes, parent=message.trace_context):
        headers = tracing.kafka_headers()
        return producer.send(message.topic, key=message.key, value=message.payload, headers=headers)


def outbox_relay_pending(*, limit: int = 500) -> int:
    """Sends the pending messages that are due. Returns how many went."""
    total = 0
    while True:
        now = timezone.now()
        with transaction.atomic():
            pending = OutboxMessage.objects.filter(sent_at__isnull=True, dead_at__isnull=True, next_attempt_at__lte=now)
            batch = list(pending.select_for_update(skip_locked=True).order_by("id")[:limit])
            OutboxMessage.objects.filter(id__in=[m.id for m in batch]).update(next_attempt_at=now + send_window())
        sent = outbox_relay(batch)
        total += sent
        if len(batch) < limit or sent < len(batch):
            return total


def outbox_purge_sent(*, now=None) -> int:
    cutoff = (now or timezone.now()) - SENT_RETENTION
    deleted, _ = OutboxMessage.objects.filter(sent_at__lt=cutoff).delete()
    return deleted


# The tasks live here, next to what they call; their names stay those of core/tasks.py, where Celery
# discovers them, so beat schedules and queued messages of a running deployment keep working.
@shared_task(name="core.tasks.outbox_relay_task")
def outbox_relay_task() -> int:
    """Right after a web request's commit: send what is due."""
    cache.delete(RELAY_REQUESTED)  # before reading: a commit from now on asks for another relay
    return outbox_relay_pending()


@shared_task(name="core.tasks.outbox_sweep")
def outbox_sweep() -> int:
    """Periodic: resend what is due (Kafka was down, a relay crashed) and forget what was sent long ago."""
    sent = outbox_relay_pending()
    outbox_purge_sent()
    return sent
