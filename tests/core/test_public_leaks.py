"""Public answers leak nothing: /health/ready names the failing check, a 500 carries the request id;
the exception text (host names, connection strings, passwords) goes to the log only."""

import logging
import socket

import pytest
from django.db import OperationalError
from django.test import Client

from core import health
from tests.core.test_conventions import ERROR_KEYS
from tests.core.urls_with_a_bug import SECRET_TEXT

pytestmark = pytest.mark.django_db

LEAKS = ("hunter2", "db.internal.example", "postgres://", "5432", "wf:")
GENERIC = "An unexpected error occurred. Quote the request id when reporting it."


def assert_no_leak(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, leak


def fail_with_secret_text(exception_class):
    def check():
        raise exception_class(SECRET_TEXT)

    return check


def test_readiness_names_the_failing_checks_but_not_why(anon, settings, monkeypatch, caplog):
    settings.REDIS_URL = "redis://:hunter2@127.0.0.1:1/0"
    settings.KAFKA_BOOTSTRAP_SERVERS = ["db.internal.example:9092"]
    monkeypatch.setattr(health, "_database", fail_with_secret_text(OperationalError))
    monkeypatch.setattr(health, "_redis", fail_with_secret_text(ConnectionError))
    monkeypatch.setattr(health, "_kafka", fail_with_secret_text(ConnectionError))
    with caplog.at_level(logging.WARNING, logger="core.health"):
        response = anon.get("/health/ready", HTTP_X_REQUEST_ID="ready-leak-test")
    assert response.status_code == 503
    body = response.json()
    assert body["detail"] == "Not ready: database, redis, kafka unavailable."
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "error",
        "redis": "error",
        "kafka": "error",
    }
    assert all(check["error"] == "unavailable" for check in body["checks"].values())
    assert_no_leak(response.content.decode())
    # The reason is in the log, under the request id.
    logged = [r for r in caplog.records if r.name == "core.health"]
    assert {r.check for r in logged} == {"database", "redis", "kafka"}
    assert all(SECRET_TEXT in str(r.exc_info[1]) and r.request_id == "ready-leak-test" for r in logged)


def test_a_ready_dependency_shows_no_address(anon, settings):
    with socket.create_server(("127.0.0.1", 0)) as server:
        settings.KAFKA_BOOTSTRAP_SERVERS = [f"127.0.0.1:{server.getsockname()[1]}"]
        response = anon.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["kafka"]["status"] == "ok"
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.parametrize("path", ["/api/v1/crash-api-exception", "/api/v1/crash-domain-error", "/crash-plain"])
def test_a_500_body_is_the_generic_message_and_the_request_id(settings, caplog, path):
    settings.ROOT_URLCONF = "tests.core.urls_with_a_bug"
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR):
        response = client.get(path, HTTP_X_REQUEST_ID="req-leak-500")
    assert response.status_code == 500
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert (body["error"], body["detail"], body["request_id"]) == ("internal_error", GENERIC, "req-leak-500")
    assert_no_leak(response.content.decode())
    logged = [r for r in caplog.records if r.exc_info and SECRET_TEXT in str(r.exc_info[1])]
    assert logged and logged[0].request_id == "req-leak-500"
