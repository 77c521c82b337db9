"""Celery discovers each app's tasks in its `tasks` module; the webhook tasks are defined beside the dispatcher."""

from webhooks.dispatch import webhook_deliveries_send, webhook_deliveries_sweep

__all__ = ["webhook_deliveries_send", "webhook_deliveries_sweep"]
