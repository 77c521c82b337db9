"""Database connection upkeep for long-running processes (executor, bridge)."""

import threading
import time

from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections

_last = threading.local()


def connections_refresh(every: float = 1.0) -> None:
    """Django's per-request connection upkeep (drop broken or too old connections), at most once a
    second per thread: each call costs a health-check round trip on the next query."""
    now = time.monotonic()
    if now - getattr(_last, "at", 0.0) >= every:
        _last.at = now
        close_old_connections()


def transient(exc: DatabaseError) -> bool:
    """A passing trouble worth trying again (connection lost, serialization failure, deadlock), as
    opposed to what the database will refuse every time (a value it cannot store, a broken rule)."""
    return isinstance(exc, OperationalError | InterfaceError)


def storable(value):
    """`value` with NUL characters written out as the text `\\u0000`: PostgreSQL refuses NUL in text
    and in JSON, and an agent's output or error must be kept, not lost, when it contains one."""
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000") if "\x00" in value else value
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value
