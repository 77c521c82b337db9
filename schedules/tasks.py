"""Celery discovers each app's tasks in its `tasks` module; the beat task is defined beside the claim."""

from schedules.beat import schedules_tick

__all__ = ["schedules_tick"]
