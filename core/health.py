"""Readiness checks: the database always, Redis and Kafka when they are configured."""

import socket
import time

from django.conf import settings
from django.db import connection


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:  # a readiness probe reports every failure, it never raises
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}".strip()[:500]}
    else:
        result = {"status": "ok", **(detail or {})}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        # Drop the broken connection so the next request reconnects instead of reusing it.
        connection.close()
        raise
    return {"vendor": connection.vendor}


def _redis():
    import redis

    timeout = settings.READINESS_TIMEOUT_SECONDS
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def _kafka():
    errors = []
    for server in settings.KAFKA_BOOTSTRAP_SERVERS:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), settings.READINESS_TIMEOUT_SECONDS):
                return {"bootstrap_server": server}
        except (OSError, ValueError) as exc:
            errors.append(f"{server}: {exc}")
    raise ConnectionError("; ".join(errors) or "no bootstrap servers")


def readiness() -> tuple[bool, dict]:
    checks = {"database": _timed(_database)}
    if settings.REDIS_URL:
        checks["redis"] = _timed(_redis)
    if settings.KAFKA_BOOTSTRAP_SERVERS:
        checks["kafka"] = _timed(_kafka)
    ready = all(check["status"] == "ok" for check in checks.values())
    return ready, checks
