"""Timestamps read by psycopg's C loader on PostgreSQL (core.db.fast_timestamps): the values Django's
own loader gave, aware and in UTC, with Django keeping it for every cursor."""

import datetime

import psycopg
import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's loaders"),
]


def test_timestamps_are_read_by_the_c_loader_as_django_read_them():
    from django.db.backends.postgresql.psycopg_any import BaseTzLoader

    with connection.cursor() as cursor:
        loader = cursor.cursor.adapters.get_loader(1184, psycopg.pq.Format.TEXT)
        if psycopg.pq.__impl__ in ("c", "binary"):
            assert loader.__name__ == "UTCTimestamptzLoader"
        cursor.execute(
            "SELECT '2026-12-03 08:00:00.123456+00'::timestamptz, '2026-06-01 10:30:00+02'::timestamptz,"
            " '0001-01-01 00:00:00+00'::timestamptz, NULL::timestamptz"
        )
        ours = cursor.fetchone()
        cursor.cursor.adapters.register_loader(
            "timestamptz", type("Django", (BaseTzLoader,), {"timezone": datetime.UTC})
        )
        cursor.execute(
            "SELECT '2026-12-03 08:00:00.123456+00'::timestamptz, '2026-06-01 10:30:00+02'::timestamptz,"
            " '0001-01-01 00:00:00+00'::timestamptz, NULL::timestamptz"
        )
        djangos = cursor.fetchone()
    assert ours == djangos
    assert [value.tzinfo for value in ours[:3]] == [datetime.UTC] * 3
    assert ours[1] == datetime.datetime(2026, 6, 1, 8, 30, tzinfo=datetime.UTC) and ours[3] is None
