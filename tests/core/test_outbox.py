"""The outbox relay with a producer that refuses some messages: the others go, the hopeless one and
the one that failed too often are dead (kept with their error, no longer retried)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from core import kafka
from core.models import OutboxMessage
from core.outbox import outbox_relay, outbox_relay_pending

pytestmark = pytest.mark.django_db


class Future:
    def __init__(self, error=None):
        self.error = error

    def get(self, timeout=None):
        if self.error:
            raise self.error


class Producer:
    """Refuses payloads marked `big` at send() (as kafka-python does over max_request_size) and
    times out those marked `slow`."""

    def __init__(self):
        self.sent = []

    def send(self, topic, key=None, value=None):
        if value.get("big"):
            raise MessageSizeTooLargeError("The message is 2000000 bytes when serialized")
        self.sent.append(value)
        return Future(KafkaTimeoutError("timed out") if value.get("slow") else None)

    def flush(self, timeout=None):
        pass


@pytest.fixture
def producer(monkeypatch):
    fake = Producer()
    monkeypatch.setattr(kafka, "producer", lambda: fake)
    monkeypatch.setattr(kafka, "producer_reset", lambda: None)
    return fake


def row(**payload):
    return OutboxMessage.objects.create(topic="t", key="k", payload=payload, next_attempt_at=timezone.now())


def test_a_message_kafka_can_never_take_is_dead_and_does_not_hold_back_the_others(producer):
    big, small = row(big=True, n=1), row(n=2)
    assert outbox_relay([big, small]) == 1  # before: the whole batch failed, again and again
    big.refresh_from_db()
    small.refresh_from_db()
    assert small.sent_at is not None
    assert big.dead_at is not None and big.sent_at is None and "MessageSizeTooLargeError" in big.last_error


def test_a_row_that_keeps_failing_is_dead_after_the_limit(producer, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    slow = row(slow=True)
    for _ in range(3):
        OutboxMessage.objects.filter(pk=slow.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        outbox_relay_pending()
    slow.refresh_from_db()
    assert slow.attempts == 3 and slow.dead_at is not None and "KafkaTimeoutError" in slow.last_error
    OutboxMessage.objects.filter(pk=slow.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    outbox_relay_pending()
    slow.refresh_from_db()
    assert slow.attempts == 3  # no longer picked up
