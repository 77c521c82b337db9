"""CORS through HTTP: allowed origins get the headers (preflights without credentials too), others none."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db
APP = "https://app.example.com"
ROOT = Path(__file__).resolve().parents[2]


def preflight(client, path, origin, headers="x-api-key, idempotency-key, content-type, x-request-id"):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
def test_a_preflight_from_an_allowed_origin_is_answered_without_credentials(anon):
    response = preflight(anon, "/api/v1/workflows/00000000-0000-4000-8000-000000000001/execute", APP)
    assert response.status_code == 200  # no API key: still answered, not 401
    assert response["Access-Control-Allow-Origin"] == APP
    allowed = {name.strip() for name in response["Access-Control-Allow-Headers"].split(",")}
    assert {"x-api-key", "authorization", "idempotency-key", "content-type", "x-request-id"} <= allowed
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
def test_answers_to_an_allowed_origin_expose_the_request_id(viewer, anon):
    response = viewer.get("/api/v1/agents", HTTP_ORIGIN=APP, HTTP_X_REQUEST_ID="from-the-app")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP
    assert response["Access-Control-Expose-Headers"].lower() == "x-request-id"
    assert response["X-Request-ID"] == "from-the-app"
    # Errors too, so the app can read them (and their request id).
    refused = anon.get("/api/v1/agents", HTTP_ORIGIN=APP)
    assert refused.status_code == 401 and refused["Access-Control-Allow-Origin"] == APP


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
@pytest.mark.parametrize(
    "origin", ["https://evil.example.com", "http://app.example.com", "https://app.example.com:8443"]
)
def test_other_origins_get_no_cors_headers(anon, viewer, origin):
    response = preflight(anon, "/api/v1/agents", origin)
    assert "Access-Control-Allow-Origin" not in response  # the browser then refuses the call
    response = viewer.get("/api/v1/agents", HTTP_ORIGIN=origin)
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response


def test_by_default_no_origin_is_allowed(anon, viewer):
    assert "Access-Control-Allow-Origin" not in preflight(anon, "/api/v1/agents", APP)
    assert "Access-Control-Allow-Origin" not in viewer.get("/api/v1/agents", HTTP_ORIGIN=APP)


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
def test_only_the_api_and_its_schema_answer_other_origins(anon):
    assert anon.get("/openapi.json", HTTP_ORIGIN=APP)["Access-Control-Allow-Origin"] == APP
    for path in ("/admin/login/", "/health"):
        assert "Access-Control-Allow-Origin" not in anon.get(path, HTTP_ORIGIN=APP), path


def settings_with(value: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = "from config import settings; print(settings.CORS_ALLOWED_ORIGINS)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "CORS_ALLOWED_ORIGINS": value},
        capture_output=True,
        text=True,
    )


def test_the_setting_takes_comma_separated_origins_and_refuses_anything_else():
    done = settings_with(" https://a.example.com, http://localhost:5173/ ")
    assert done.returncode == 0 and done.stdout.strip() == "['https://a.example.com', 'http://localhost:5173']"
    refused = settings_with("https://a.example.com/app")
    assert refused.returncode != 0 and "CORS_ALLOWED_ORIGINS must be comma-separated origins" in refused.stderr
    assert settings_with("a.example.com").returncode != 0
