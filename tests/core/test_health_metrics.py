import re

import httpx
import pytest

from tests.support.server import gunicorn

pytestmark = pytest.mark.django_db


def test_liveness_needs_no_credentials(anon):
    response = anon.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_checks_the_database(anon):
    response = anon.get("/health/ready")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["database"]["latency_ms"] >= 0


def test_readiness_includes_each_configured_dependency(anon, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]
    settings.READINESS_TIMEOUT_SECONDS = 1
    response = anon.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "service_unavailable"
    assert body["detail"] == "Not ready: redis, kafka unavailable."
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "error"
    assert body["checks"]["kafka"]["status"] == "error"
    assert "127.0.0.1:1" not in response.content.decode()  # the why is in the log (test_public_leaks.py)


def test_readiness_with_a_reachable_redis(anon, settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    body = anon.get("/health/ready").json()
    assert body["checks"]["redis"]["status"] == "ok", body


@pytest.mark.slow
def test_database_down_liveness_ok_readiness_503():
    # A real server whose database is unreachable: liveness stays up, readiness says why, the API answers 503.
    with gunicorn({"DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere", "DATABASE_CONNECT_TIMEOUT": "1"}) as url:
        assert httpx.get(url + "/health").json() == {"status": "ok"}
        ready = httpx.get(url + "/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"]["status"] == "error"
        assert ready.json()["detail"] == "Not ready: database unavailable."
        api = httpx.get(url + "/api/v1/agents", headers={"X-API-Key": "abc.def"})
        assert api.status_code == 503
        assert api.json()["error"] == "service_unavailable"


def metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_latency_and_statuses(anon, viewer):
    before = anon.get("/metrics").content.decode()
    for _ in range(3):
        viewer.get("/api/v1/agents")
    anon.get("/api/v1/agents")  # 401
    after = anon.get("/metrics")
    assert after.status_code == 200
    assert after["Content-Type"].startswith("text/plain")
    text = after.content.decode()
    assert (
        metric(text, "django_http_requests_total_by_method_total", method="GET")
        >= metric(before, "django_http_requests_total_by_method_total", method="GET") + 4
    )
    for status, grew in (("200", 3), ("401", 1)):
        old = metric(before, "django_http_responses_total_by_status_total", status=status)
        assert metric(text, "django_http_responses_total_by_status_total", status=status) >= old + grew
    assert re.search(r"django_http_requests_latency_seconds_by_view_method_bucket\{.*agent-list", text)


def test_metrics_can_be_protected_by_a_token(anon, settings):
    settings.METRICS_TOKEN = "m-token"
    response = anon.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"]
    assert anon.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert anon.get("/metrics", HTTP_AUTHORIZATION="Bearer m-token").status_code == 200
