"""Readiness checks: the database always, Redis and Kafka when they are configured.

The answer is public, so it names what failed and nothing more: an exception's text holds host names,
addresses and sometimes credentials (a connection string). The reason goes to the log."""

import logging
import socket
import time

from django.conf import settings
from django.db import connection

logger = logging.getLogger("core.health")


def _timed(name: str, check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception:  # a readiness probe reports every failure, it never raises
        logger.warning("Readiness check %s failed", name, exc_info=True, extra={"check": name})
        result = {"status": "error", "error": "unavailable"}
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
                return None
        except (OSError, ValueError) as exc:
            errors.append(f"{server}: {exc}")
    raise ConnectionError("; ".join(errors) or "no bootstrap servers")


def readiness() -> tuple[bool, dict]:
    checks = {"database": _timed("database", _database)}
    if settings.REDIS_URL:
        checks["redis"] = _timed("redis", _redis)
    if settings.KAFKA_BOOTSTRAP_SERVERS:
        checks["kafka"] = _timed("kafka", _kafka)
    ready = all(check["status"] == "ok" for check in checks.values())
    return ready, checks
