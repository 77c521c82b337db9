from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import ApiKey
from core.roles import Role
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/agents"


def key_client(raw):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    return client


def test_no_credentials_is_401_with_www_authenticate(anon):
    response = anon.get(URL)
    assert response.status_code == 401
    assert "Bearer" in response["WWW-Authenticate"]
    assert "Api-Key" in response["WWW-Authenticate"]
    assert response.json()["error"] == "not_authenticated"


@pytest.mark.parametrize("header", ["HTTP_X_API_KEY", "HTTP_AUTHORIZATION"])
def test_bad_api_key_is_401(anon, header, viewer):
    value = "Api-Key nope.nope" if header == "HTTP_AUTHORIZATION" else "nope.nope"
    response = anon.get(URL, **{header: value})
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    wrong_secret = viewer.raw_key.split(".")[0] + ".wrongsecret"
    assert anon.get(URL, HTTP_X_API_KEY=wrong_secret).status_code == 401


def test_api_key_in_authorization_header(anon, viewer):
    assert anon.get(URL, HTTP_AUTHORIZATION=f"Api-Key {viewer.raw_key}").status_code == 200


def test_key_is_stored_hashed_and_last_use_recorded(viewer):
    api_key = ApiKey.objects.get(pk=viewer.api_key.pk)
    assert viewer.raw_key not in api_key.hashed_key
    assert viewer.raw_key.split(".")[1] not in str(api_key.__dict__)
    assert api_key.last_used_at is None
    viewer.get(URL)
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_revoked_key_is_refused_at_once(admin, viewer):
    assert viewer.get(URL).status_code == 200
    response = admin.post(f"/api/v1/api-keys/{viewer.api_key.pk}/revoke")
    assert response.status_code == 200
    assert response.json()["revoked"] is True and response.json()["revoked_at"]
    refused = viewer.get(URL)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert admin.post(f"/api/v1/api-keys/{viewer.api_key.pk}/revoke").status_code == 409


def test_expired_key_is_refused(viewer):
    ApiKey.objects.filter(pk=viewer.api_key.pk).update(expiry_date=timezone.now() - timedelta(seconds=1))
    response = viewer.get(URL)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_key_of_an_inactive_user_is_refused(viewer):
    viewer.user.is_active = False
    viewer.user.save()
    assert viewer.get(URL).status_code == 401


def test_jwt_obtain_use_and_refresh(anon):
    make_user("jwt-editor", Role.EDITOR)
    response = anon.post("/api/v1/auth/token", {"username": "jwt-editor", "password": "pw-123456-long"}, format="json")
    assert response.status_code == 200, response.content
    tokens = response.json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.get(URL).status_code == 200
    created = client.post(URL, {"name": "via-jwt", "url": "http://127.0.0.1:1/"}, format="json")
    assert created.status_code == 201
    assert created.json()["created_by"] == "jwt-editor"
    refreshed = anon.post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200 and refreshed.json()["access"]


def test_jwt_wrong_password_and_bad_token_are_401(anon):
    make_user("jwt-user", Role.VIEWER)
    response = anon.post("/api/v1/auth/token", {"username": "jwt-user", "password": "wrong"}, format="json")
    assert response.status_code == 401
    assert anon.get(URL, HTTP_AUTHORIZATION="Bearer not.a.jwt").status_code == 401


def test_jwt_missing_fields_is_422(anon):
    response = anon.post("/api/v1/auth/token", {}, format="json")
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"username", "password"}


def test_jwt_role_comes_from_the_users_group(anon):
    make_user("jwt-viewer", Role.VIEWER)
    credentials = {"username": "jwt-viewer", "password": "pw-123456-long"}
    tokens = anon.post("/api/v1/auth/token", credentials, format="json").json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.get(URL).status_code == 200
    assert client.post(URL, {"name": "x", "url": "http://127.0.0.1:1/"}, format="json").status_code == 403


def test_user_without_a_role_is_403(anon):
    make_user("no-role", None)
    client = APIClient()
    client.force_authenticate(user=None)
    client.login(username="no-role", password="pw-123456-long")
    assert client.get(URL).status_code == 403


def test_session_auth_for_the_browsable_api(anon):
    make_user("browser", Role.VIEWER)
    client = APIClient()
    assert client.login(username="browser", password="pw-123456-long")
    response = client.get(URL, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<html" in response.content.lower()


def test_api_key_lifecycle(admin):
    make_user("bot", Role.OPERATOR)
    response = admin.post(
        "/api/v1/api-keys", {"name": "ci", "role": "operator", "user": "bot", "expires_in_days": 30}, format="json"
    )
    assert response.status_code == 201, response.content
    created = response.json()
    raw = created["key"]
    assert created["prefix"] == raw.split(".")[0]
    assert created["user"] == "bot" and created["role"] == "operator"
    assert created["created_by"] == admin.user.username
    assert 29 <= (timezone.datetime.fromisoformat(created["expires_at"]) - timezone.now()).days <= 30
    # shown once: never again in list or detail
    listed = admin.get("/api/v1/api-keys").json()
    assert raw not in str(listed)
    assert {k["name"] for k in listed["items"]} == {"admin key", "ci"}
    detail = admin.get(f"/api/v1/api-keys/{created['id']}").json()
    assert "key" not in detail
    # the key works with its role: operator can read, cannot create agents
    bot = key_client(raw)
    assert bot.get(URL).status_code == 200
    assert bot.post(URL, {"name": "n", "url": "http://127.0.0.1:1/"}, format="json").status_code == 403
    assert admin.post(f"/api/v1/api-keys/{created['id']}/revoke").status_code == 200
    assert bot.get(URL).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "viewer"}, "name"),
        ({"name": "k", "role": "superuser"}, "role"),
        ({"name": "k" * 51, "role": "viewer"}, "name"),
        ({"name": "k", "role": "viewer", "user": "ghost"}, "user"),
        ({"name": "k", "role": "viewer", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "k", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "k", "role": "viewer", "key": "chosen.secret"}, "key"),
    ],
)
def test_api_key_bad_input(admin, body, field):
    response = admin.post("/api/v1/api-keys", body, format="json")
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}


def test_create_api_key_command_prints_the_key_last(capsys):
    call_command("create_api_key", "ops-bot", "--role", "editor", "--name", "deploy", "--expires-in-days", "7")
    lines = capsys.readouterr().out.strip().splitlines()
    raw = lines[-1]
    assert "." in raw and " " not in raw
    api_key = ApiKey.objects.get(prefix=raw.split(".")[0])
    assert (api_key.user.username, api_key.role, api_key.name) == ("ops-bot", "editor", "deploy")
    assert api_key.expiry_date is not None
    assert api_key.user.groups.filter(name="editor").exists()
    client = key_client(raw)
    assert client.post(URL, {"name": "from-cli", "url": "http://127.0.0.1:1/"}, format="json").status_code == 201


def test_create_api_key_command_rejects_bad_arguments():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_api_key", "someone", "--role", "editor", "--expires-in-days", "0")
    with pytest.raises(CommandError):
        call_command("create_api_key", "someone", "--role", "god")
    assert not ApiKey.objects.exists()
