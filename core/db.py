"""Database connection upkeep for long-running processes (executor, bridge)."""

import threading
import time

from django.db import close_old_connections

_last = threading.local()


def connections_refresh(every: float = 1.0) -> None:
    """Django's per-request connection upkeep (drop broken or too old connections), at most once a
    second per thread: each call costs a health-check round trip on the next query."""
    now = time.monotonic()
    if now - getattr(_last, "at", 0.0) >= every:
        _last.at = now
        close_old_connections()
