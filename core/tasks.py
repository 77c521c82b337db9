"""Celery discovers each app's tasks in its `tasks` module; the outbox's are defined beside the outbox."""

from core.outbox import outbox_relay_task, outbox_sweep

__all__ = ["outbox_relay_task", "outbox_sweep"]
