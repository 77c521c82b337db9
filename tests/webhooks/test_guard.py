"""The address guard (SSRF): with WEBHOOK_ALLOW_PRIVATE_URLS off, URLs that resolve to loopback,
private, link-local, multicast, reserved or unspecified addresses are refused when saved (422 on `url`)
and again when a delivery connects (failed at once, not retried, nothing sent).

Names are resolved by a stand-in for socket.getaddrinfo where a test needs a public answer: no test
here connects anywhere but 127.0.0.1."""

import socket

import pytest

from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents
from tests.webhooks.conftest import endpoint
from webhooks import addresses
from webhooks.choices import DeliveryStatus
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks"
PUBLIC = "93.184.215.14"
REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture
def guard_on(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False


@pytest.fixture
def dns(monkeypatch):
    """dns({"name": ["1.2.3.4"], "missing": None}): those names answer so; the others as usual."""
    names: dict[str, list[str] | None] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in names:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        if names[host] is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        family = {True: socket.AF_INET6, False: socket.AF_INET}
        return [(family[":" in a], socket.SOCK_STREAM, 6, "", (a, port)) for a in names[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names.update


def create(admin, url):
    return admin.post(URL, {"url": url, "event_types": ["*"]}, format="json")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://localhost:8080/hook", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://172.16.0.1/", "private"),
        ("https://192.168.1.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://100.64.0.1/", "not globally reachable"),
        ("http://inside.example/", "private"),  # a name: what it resolves to counts
        ("http://mixed.example/", "private"),  # one private address among public ones is enough
    ],
)
def test_internal_addresses_are_refused_at_save(admin, guard_on, dns, url, reason):
    dns({"inside.example": ["10.0.0.8"], "mixed.example": [PUBLIC, "10.0.0.9"]})
    response = create(admin, url)
    assert response.status_code == 422, response.content
    [error] = response.json()["errors"]
    assert error["field"] == "url" and reason in error["message"] and "WEBHOOK_ALLOW_PRIVATE_URLS" in error["message"]


def test_public_names_are_accepted_and_unknown_ones_refused(admin, guard_on, dns):
    dns({"hooks.example.com": [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"], "nowhere.example": None})
    assert create(admin, "https://hooks.example.com/in").status_code == 201
    response = create(admin, "https://nowhere.example/in")
    assert response.json()["errors"][0]["message"].startswith("The host 'nowhere.example' does not resolve")


def test_updates_are_checked_too(admin, guard_on, dns):
    dns({"hooks.example.com": [PUBLIC]})
    created = create(admin, "https://hooks.example.com/in").json()
    response = admin.patch(f"{URL}/{created['id']}", {"url": "http://127.0.0.1:8000/admin"}, format="json")
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "url"


def test_the_setting_lifts_the_guard(admin, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    assert create(admin, "http://localhost:8080/hook").status_code == 201
    assert create(admin, "http://10.1.2.3/hook").status_code == 201


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_delivery_to_an_internal_address_fails_unsent(httpserver, deliver, settings, host):
    httpserver.expect_request("/hook").respond_with_data("ok")
    hook = endpoint(f"http://{host}:{httpserver.port}/hook", ["run.pending"])  # saved while allowed
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with deliver():
        run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    delivery = Delivery.objects.get(endpoint=hook)
    assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
    assert "loopback" in delivery.last_error and "Not retried" in delivery.last_error
    assert delivery.attempts.get().status_code is None
    assert not httpserver.log


def test_a_name_that_changes_its_answer_after_the_save_is_refused(httpserver, deliver, guard_on, dns):
    httpserver.expect_request("/hook").respond_with_data("ok")
    dns({"rebind.example": [PUBLIC]})
    endpoint(f"http://rebind.example:{httpserver.port}/hook", ["run.pending"])
    dns({"rebind.example": ["127.0.0.1"]})  # DNS rebinding: public when checked, loopback when used
    with deliver():
        run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and "127.0.0.1 (loopback)" in delivery.last_error
    assert not httpserver.log


def test_the_connection_goes_to_the_checked_address_under_the_original_name(
    httpserver, deliver, guard_on, dns, monkeypatch
):
    httpserver.expect_request("/hook").respond_with_data("ok")
    dns({"receiver.test": ["127.0.0.1"]})
    real = addresses.address_refused
    monkeypatch.setattr(addresses, "address_refused", lambda a: None if a == "127.0.0.1" else real(a))
    endpoint(f"http://receiver.test:{httpserver.port}/hook", ["run.pending"])
    with deliver():
        run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
    [(request, _)] = httpserver.log
    assert request.headers["Host"] == f"receiver.test:{httpserver.port}"


def test_address_rules():
    refused = addresses.address_refused
    assert refused(PUBLIC) is None and refused("2606:4700:4700::1111") is None
    assert refused("::ffff:10.0.0.1") == "private"
    assert refused("fe80::1%eth0") == "link-local"
    assert refused("fd00::1") == "private"
