from celery import shared_task
from django.core.cache import cache

from core.outbox import RELAY_REQUESTED, outbox_purge_sent, outbox_relay_pending


@shared_task
def outbox_relay_task() -> int:
    """Right after a web request's commit: send what is due."""
    cache.delete(RELAY_REQUESTED)  # before reading: a commit from now on asks for another relay
    return outbox_relay_pending()


@shared_task
def outbox_sweep() -> int:
    """Periodic: resend what is due (Kafka was down, a relay crashed) and forget what was sent long ago."""
    sent = outbox_relay_pending()
    outbox_purge_sent()
    return sent
