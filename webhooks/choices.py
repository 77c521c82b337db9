"""Delivery statuses and the retry schedule of webhook deliveries."""

from django.db import models


class DeliveryStatus(models.TextChoices):
    PENDING = "PENDING"  # not tried yet (or redelivered), or waiting for an earlier delivery of its run
    SENDING = "SENDING"  # claimed by a worker; `next_attempt_at` is when the claim lapses
    RETRYING = "RETRYING"  # failed, tried again at `next_attempt_at`
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


# Not finished: a worker may still send it, and later deliveries of its run to its endpoint wait for it.
OPEN_DELIVERY = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.RETRYING)

# The Standard Webhooks schedule: delay before each attempt, in seconds (the first is immediate).
# About three days in all; after the last failed attempt the delivery is FAILED.
RETRY_SCHEDULE = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600)
# Each delay is stretched or shrunk by up to this fraction, so receivers that were down together
# are not hit by every retry at the same second.
RETRY_JITTER = 0.1

PING = "ping"  # the test delivery's type: sent to one endpoint, never retried
SECRET_PREFIX = "whsec_"
MASK = "********"
