"""Password guessing is throttled per client address on every login: the JWT token endpoint, the admin's
login page and the browsable API's. A new X-Forwarded-For per request does not make a new client."""

import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent
from core.roles import Role
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "pw-123456-long"
BURST = 100


def address() -> str:
    """A client address of its own per test: the throttle counters live in the cache (Redis in CI),
    shared by parallel workers and by runs less than a minute apart."""
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


def spoofed(n: int) -> str:
    return f"203.0.113.{n % 250 + 1}"


def token(client, password: str, n: int = 0):
    return client.post(
        "/api/v1/auth/token",
        {"username": "guessed", "password": password},
        format="json",
        HTTP_X_FORWARDED_FOR=spoofed(n),
    )


def form_login(client, url: str, password: str, n: int = 0):
    return client.post(url, {"username": "guessed", "password": password}, HTTP_X_FORWARDED_FOR=spoofed(n))


def test_token_burst_with_a_new_forwarded_for_each_time_is_throttled():
    make_user("guessed", Role.VIEWER)
    client = APIClient(REMOTE_ADDR=address())
    codes = [token(client, "wrong", n).status_code for n in range(BURST)]
    assert set(codes) == {401, 429}
    assert codes.count(429) >= BURST - 30  # AUTH_THROTTLE_RATE: 30/min
    refused = token(client, PASSWORD)
    assert refused.status_code == 429  # the right password too, during the lockout
    assert refused.json()["error"] == "throttled" and int(refused["Retry-After"]) > 0
    assert token(APIClient(REMOTE_ADDR=address()), PASSWORD).status_code == 200  # other clients are not


@pytest.mark.parametrize("url", ["/admin/login/", "/api-auth/login/"])
def test_login_pages_are_throttled(url):
    user = make_user("guessed", Role.ADMIN)
    user.is_staff = True
    user.save()
    client = Client(REMOTE_ADDR=address())
    codes = [form_login(client, url, "wrong", n).status_code for n in range(BURST)]
    assert set(codes) == {200, 429}  # 200: the form again, with its error
    assert codes.count(429) >= BURST - 30
    refused = form_login(client, url, PASSWORD)
    assert refused.status_code == 429
    assert "Too many login attempts" in refused.json()["detail"] and int(refused["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session
    other = Client(REMOTE_ADDR=address())
    assert form_login(other, url, PASSWORD).status_code == 302
    assert other.session["_auth_user_id"] == str(user.pk)


def test_showing_the_login_form_is_not_an_attempt():
    client = Client(REMOTE_ADDR=address())
    assert all(client.get("/admin/login/").status_code == 200 for _ in range(40))


def test_behind_proxies_the_address_the_last_proxy_saw_is_the_client(settings, editor):
    """NUM_PROXIES=1: the entry our proxy appended counts; whatever the client put before it does not."""
    settings.NUM_PROXIES = 1
    make_user("guessed", Role.VIEWER)
    proxy, real = address(), address()
    client = APIClient(REMOTE_ADDR=proxy)
    codes = [
        client.post(
            "/api/v1/auth/token",
            {"username": "guessed", "password": "wrong"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"{spoofed(n)}, {real}",
        ).status_code
        for n in range(40)
    ]
    assert 429 in codes
    fresh = client.post(
        "/api/v1/auth/token",
        {"username": "guessed", "password": PASSWORD},
        format="json",
        HTTP_X_FORWARDED_FOR=address(),
    )
    assert fresh.status_code == 200  # another client behind the same proxy
    # The audit trail records the same address.
    editor.post(
        "/api/v1/agents",
        {"name": "via-proxy", "url": "http://127.0.0.1:1/"},
        format="json",
        HTTP_X_FORWARDED_FOR=f"1.2.3.4, {real}",
    )
    assert AuditEvent.objects.get(action="agent.create").ip == real
