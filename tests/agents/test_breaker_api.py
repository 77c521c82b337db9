"""An agent's circuit breaker through the API, the admin, the audit trail and /metrics."""

import json
import time

import pytest

from agents import breaker
from agents.breaker_store import circuit_admit, circuit_record
from audit.models import AuditEvent
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/agents"
CUSTOM = {
    "enabled": True,
    "failure_threshold": 3,
    "failure_rate_threshold": 0.7,
    "window_size_seconds": 60,
    "timeout_seconds": 30,
    "half_open_max_calls": 2,
}


def payload(**overrides):
    return {"name": "flaky", "url": "http://127.0.0.1:9001/", **overrides}


def opened(agent, failures=5):
    """Opens the agent's breaker in the shared store, as the bridges do."""
    config, now = breaker.config_of(agent.circuit_breaker_config), time.time()
    for _ in range(failures):
        ticket = circuit_admit(str(agent.pk), config, now, 5)
        circuit_record(ticket, config, True, now, "Agent returned HTTP 503: down")
    return now


def test_new_agents_have_the_default_breaker_closed(editor):
    body = editor.post(URL, payload(), format="json").json()
    assert body["circuit_breaker_config"] == breaker.DEFAULT_CONFIG
    assert body["circuit_state"] == {
        "state": "closed",
        "opened_at": None,
        "retry_at": None,
        "consecutive_failures": 0,
        "recent_calls": 0,
        "recent_failures": 0,
        "last_error": None,
    }


def test_the_older_uis_config_is_taken_on_create_put_and_patch_and_audited(editor):
    created = editor.post(URL, payload(circuit_breaker_config=CUSTOM), format="json")
    assert created.status_code == 201, created.content
    agent_url = f"{URL}/{created.json()['id']}"
    assert created.json()["circuit_breaker_config"] == CUSTOM
    patched = editor.patch(agent_url, {"circuit_breaker_config": {"timeout_seconds": 90}}, format="json").json()
    assert patched["circuit_breaker_config"] == {**CUSTOM, "timeout_seconds": 90}  # the rest kept
    put = editor.put(agent_url, payload(circuit_breaker_config={"enabled": False}), format="json").json()
    # PUT leaves out what it does not change, as PATCH does (the older API's clients rely on it).
    assert put["circuit_breaker_config"] == {**CUSTOM, "timeout_seconds": 90, "enabled": False}
    reset = editor.patch(agent_url, {"circuit_breaker_config": None}, format="json").json()
    assert reset["circuit_breaker_config"] == breaker.DEFAULT_CONFIG
    assert editor.get(agent_url).json()["circuit_breaker_config"] == breaker.DEFAULT_CONFIG
    changes = [
        event.changes["circuit_breaker_config"]
        for event in AuditEvent.objects.filter(action__in=["agent.create", "agent.update"]).order_by("created_at")
    ]
    assert changes[0] == [None, CUSTOM]
    assert changes[1] == [CUSTOM, {**CUSTOM, "timeout_seconds": 90}]
    assert changes[-1] == [{**CUSTOM, "timeout_seconds": 90, "enabled": False}, None]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"failure_threshold": 0}, "circuit_breaker_config.failure_threshold"),
        ({"failure_threshold": 1001}, "circuit_breaker_config.failure_threshold"),
        ({"failure_threshold": "many"}, "circuit_breaker_config.failure_threshold"),
        ({"failure_rate_threshold": 1.5}, "circuit_breaker_config.failure_rate_threshold"),
        ({"failure_rate_threshold": 0}, "circuit_breaker_config.failure_rate_threshold"),
        ({"window_size_seconds": 0}, "circuit_breaker_config.window_size_seconds"),
        ({"timeout_seconds": 86_401}, "circuit_breaker_config.timeout_seconds"),
        ({"half_open_max_calls": 0}, "circuit_breaker_config.half_open_max_calls"),
        ({"enabled": "perhaps"}, "circuit_breaker_config.enabled"),
        ({"jitter": True}, "circuit_breaker_config.jitter"),
    ],
)
def test_bad_config_is_422_on_its_field(editor, config, field):
    response = editor.post(URL, payload(circuit_breaker_config=config), format="json")
    assert response.status_code == 422, response.content
    assert {error["field"] for error in response.json()["errors"]} == {field}
    agent = AgentFactory()
    response = editor.patch(f"{URL}/{agent.id}", {"circuit_breaker_config": config}, format="json")
    assert response.status_code == 422 and {e["field"] for e in response.json()["errors"]} == {field}


def test_a_config_that_is_not_an_object_is_422(editor):
    response = editor.post(URL, payload(circuit_breaker_config=[1]), format="json")
    assert response.status_code == 422
    assert {error["field"] for error in response.json()["errors"]} == {"circuit_breaker_config"}


def test_list_and_detail_show_the_state_every_bridge_sees(viewer):
    flaky, fine = AgentFactory(name="flaky"), AgentFactory(name="fine")
    opened_at = opened(flaky)
    items = {item["name"]: item["circuit_state"] for item in viewer.get(URL).json()["items"]}
    assert items["fine"]["state"] == "closed"
    state = items["flaky"]
    assert state["state"] == "open" and state["consecutive_failures"] == 5
    assert (state["recent_calls"], state["recent_failures"]) == (5, 5)
    assert state["last_error"] == "Agent returned HTTP 503: down"
    assert state["opened_at"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(opened_at)))
    assert state["retry_at"] is not None
    assert viewer.get(f"{URL}/{flaky.id}").json()["circuit_state"] == state
    assert viewer.get(f"{URL}/{fine.id}").json()["circuit_state"]["state"] == "closed"


def test_a_disabled_breaker_shows_closed(viewer):
    agent = AgentFactory(name="flaky")
    opened(agent)
    agent.circuit_breaker_config = {**breaker.DEFAULT_CONFIG, "enabled": False}
    agent.save()
    assert viewer.get(f"{URL}/{agent.id}").json()["circuit_state"]["state"] == "closed"


def test_the_admin_lists_the_state_and_edits_the_config_with_the_same_rules(staff):
    agent = AgentFactory(name="flaky")
    opened(agent)
    listing = staff.get("/admin/agents/agent/").content.decode()
    assert "Circuit breaker" in listing and ">open<" in listing
    change = f"/admin/agents/agent/{agent.id}/change/"
    page = staff.get(change).content.decode()
    assert "5 failures in a row" in page and "last error: Agent returned HTTP 503: down" in page
    form = {"name": "flaky", "url": agent.url, "description": "", "timeout_ms": agent.timeout_ms, "status": "active"}
    form["retry_config"] = json.dumps(agent.retry_config)
    bad = staff.post(change, {**form, "circuit_breaker_config": json.dumps({"failure_threshold": 0})})
    assert bad.status_code == 200 and "failure_threshold: Ensure this value is greater than" in bad.content.decode()
    good = staff.post(change, {**form, "circuit_breaker_config": json.dumps({"timeout_seconds": 5})})
    assert good.status_code == 302
    agent.refresh_from_db()
    assert agent.circuit_breaker_config == {**breaker.DEFAULT_CONFIG, "timeout_seconds": 5}
    event = AuditEvent.objects.get(action="agent.update")
    assert event.user == "boss" and event.changes["circuit_breaker_config"][1]["timeout_seconds"] == 5


def test_metrics_show_calls_failures_and_state_per_agent(anon):
    flaky, fine = AgentFactory(name="flaky"), AgentFactory(name="fine")
    opened(flaky, failures=5)
    config = breaker.config_of(None)
    for _ in range(2):
        circuit_record(circuit_admit(str(fine.pk), config, time.time(), 5), config, False, time.time(), None)
    text = anon.get("/metrics").content.decode()
    assert 'wfplatform_agent_calls_total{agent="flaky"} 5.0' in text
    assert 'wfplatform_agent_call_failures_total{agent="flaky"} 5.0' in text
    assert 'wfplatform_agent_circuit_opened_total{agent="flaky"} 1.0' in text
    assert 'wfplatform_agent_circuit_state{agent="flaky",state="open"} 1.0' in text
    assert 'wfplatform_agent_circuit_state{agent="flaky",state="closed"} 0.0' in text
    assert 'wfplatform_agent_calls_total{agent="fine"} 2.0' in text
    assert 'wfplatform_agent_call_failures_total{agent="fine"} 0.0' in text
    assert 'wfplatform_agent_circuit_state{agent="fine",state="closed"} 1.0' in text


def test_agents_are_listed_while_the_store_is_away(viewer, settings):
    AgentFactory(name="flaky")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = viewer.get(URL)
    assert response.status_code == 200
    assert response.json()["items"][0]["circuit_state"]["state"] == "unknown"
