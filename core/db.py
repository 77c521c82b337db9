"""Database connection upkeep for long-running processes (executor, bridge)."""

import functools
import threading
import time
import uuid

from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection

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


def the_one(queryset):
    """The row of a lookup that finds at most one (a primary or unique key), or None: `.first()` would
    order by the model's ordering, which the ORM spends more time compiling than the query takes."""
    return next(iter(queryset.order_by()[:1]), None)


@functools.cache
def _select(model, where: str, omit: tuple[str, ...], tail: str, extra: str) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in model._meta.concrete_fields if f.attname not in omit)
    table = quote(model._meta.db_table)
    return f"SELECT {columns}{extra} FROM {table} WHERE {where} {tail}"  # noqa: S608 - names from the model


def the_row(model, where: str, params: list, *, omit: tuple[str, ...] = (), tail: str = "LIMIT 1", extra: str = ""):
    """The first row of `model` WHERE `where` (hand-written, with %s placeholders) or None; `omit`:
    fields left deferred; `tail`: ORDER BY, LIMIT, FOR UPDATE; `extra`: more columns (", <sql> AS
    name", their placeholders first in `params`), set as attributes. For the engine's hot reads: the
    ORM compiles each query again every time (0.5-2.5 ms of CPU), this SQL is built once."""
    if connection.vendor != "postgresql":  # elsewhere Django stores a UUID as its 32 hex digits
        params = [value.hex if isinstance(value, uuid.UUID) else value for value in params]
    return next(iter(model.objects.raw(_select(model, where, omit, tail, extra), params)), None)


def for_update() -> str:
    """The row-lock clause of this database (SQLite has none: it locks the whole database on write)."""
    return "FOR UPDATE" if connection.features.has_select_for_update else ""
