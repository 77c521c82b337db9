"""Counting psycopg's pipeline mode: how tests see that pipelined statements went in one round trip."""

import contextlib

from django.db import connection


@contextlib.contextmanager
def pipelines_counted():
    """How many times psycopg's pipeline mode was entered on this connection (PostgreSQL only)."""
    entered: list = []
    if connection.vendor != "postgresql":
        yield entered
        return
    connection.ensure_connection()
    raw = connection.connection
    original = raw.pipeline

    def counted():
        entered.append(1)
        return original()

    raw.pipeline = counted
    try:
        yield entered
    finally:
        del raw.pipeline
