"""A full run with a bearer agent, an API-key agent and a webhook: the configured secrets reach the agents
(their calls carry them) and nowhere else. No API or admin page, log line, audit row, history row, run
log, event, Kafka message, webhook body or database column holds one (issue 13, the grep-style test)."""

import asyncio
import json
import logging

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from kafka.structs import TopicPartition
from simple_history.models import HistoricalChanges

from agents.agent_http import AgentClient
from audit.models import AuditEvent
from core.models import OutboxMessage
from runs.bridge import Bridge
from runs.models import Event, Run, RunLog
from tests.runs.helpers import chain
from tests.runs.test_executor import send, start, tasks
from tests.support.http_server import StubServer
from tests.webhooks.conftest import received, sweep_due
from webhooks.models import Delivery, DeliveryAttempt

TOKEN, KEY = "bearer-tok-9f3e2a71", "api-key-4c1d8b06"
REPLY = {
    "jsonrpc": "2.0",
    "id": "1",
    "result": {"kind": "message", "messageId": "m", "role": "agent", "parts": [{"kind": "text", "text": "DONE"}]},
}


def rows(model) -> str:
    return json.dumps(list(model._base_manager.values()), default=str)


def whole_database() -> str:
    """Every row of every table, as the database holds it."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - our own table names
            dump += [str(row) for row in cursor.fetchall()]
    return "\n".join(dump)


class Engine:
    """The executor and the bridge, message by message, without Kafka (as tests/runs do)."""

    def __init__(self, monkeypatch):
        self.bridge, self.partition, self.offset = Bridge(), TopicPartition("tasks", 0), 0
        self.messages: list = []
        monkeypatch.setattr(self.bridge, "publish", self._publish)

    async def _publish(self, message):
        self.messages.append(message)

    def call(self, task) -> dict:
        async def go():
            async with AgentClient() as client:
                await self.bridge.process(client, self.partition, self.offset, task)

        self.bridge.tracker.add(self.partition, self.offset)
        self.offset += 1
        asyncio.run(go())
        return self.messages[-1]

    def run(self, run) -> None:
        sent = start(run)
        pending = tasks(sent)
        while pending:
            outcome = send(settings.KAFKA_RESULTS_TOPIC, self.call(pending.pop(0)))
            sent += outcome
            pending += tasks(outcome)
        self.messages += [message.payload for message in sent]


@pytest.mark.django_db(transaction=True)
def test_configured_secrets_go_to_the_agents_and_nowhere_else(
    editor, operator, admin, viewer, httpserver, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request("/hook").respond_with_data("ok")
    responses = []

    def call(client, method, path, body=None, status=200):
        response = (
            getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)
        )
        assert response.status_code == status, (path, response.content)
        responses.append(response.content.decode())
        return response.json()

    with StubServer({"/bearer": (200, REPLY, 0), "/apikey": (200, REPLY, 0)}) as agents:
        bearer = {"auth_type": "bearer", "auth_config": {"token": TOKEN}}
        apikey = {"auth_type": "apikey", "auth_config": {"key": KEY, "header_name": "X-Agent-Key"}}
        first = call(editor, "post", "/api/v1/agents", {"name": "upper", "url": agents.url + "/bearer", **bearer}, 201)
        second = call(editor, "post", "/api/v1/agents", {"name": "count", "url": agents.url + "/apikey", **apikey}, 201)
        created = admin.post(
            "/api/v1/webhooks", {"url": httpserver.url_for("/hook"), "event_types": ["*"]}, format="json"
        )
        secret = created.json()["secret"]  # shown once, by design: the one answer left out of the checks
        workflow = call(editor, "post", "/api/v1/workflows", chain("upper", "count", name="secretive"), 201)
        run = call(operator, "post", f"/api/v1/workflows/{workflow['id']}/execute", {"input_data": {"text": "hi"}}, 202)

        engine = Engine(monkeypatch)
        engine.run(Run.objects.get(pk=run["id"]))
        sweep_due()  # any delivery still due goes out now
        assert call(viewer, "get", f"/api/v1/runs/{run['id']}")["status"] == "COMPLETED"

        for path in ("steps", "logs"):
            call(viewer, "get", f"/api/v1/runs/{run['id']}/{path}")
        for agent in (first, second):
            call(viewer, "get", f"/api/v1/agents/{agent['id']}")
            call(viewer, "get", f"/api/v1/agents/{agent['id']}/health")
            call(editor, "patch", f"/api/v1/agents/{agent['id']}", {"description": "edited"})
        call(viewer, "get", "/api/v1/agents")
        call(admin, "get", "/api/v1/audit-logs", {"page_size": 100})
        call(admin, "get", "/api/v1/webhooks")
        call(admin, "get", f"/api/v1/webhooks/{created.json()['id']}/deliveries", {"page_size": 100})

        get_user_model().objects.create_superuser("boss", "", "pw-123456-long")
        staff = Client()
        staff.force_login(get_user_model().objects.get(username="boss"))
        for page in (
            f"/admin/agents/agent/{first['id']}/change/",
            f"/admin/agents/agent/{second['id']}/history/",
            f"/admin/webhooks/webhookendpoint/{created.json()['id']}/change/",
            "/admin/audit/auditevent/",
        ):
            response = staff.get(page)
            assert response.status_code == 200, page
            responses.append(response.content.decode())

    # The calls themselves carry the secrets, to the agents' own server.
    calls = {path: headers for path, headers in agents.requests if path in ("/bearer", "/apikey")}
    assert calls["/bearer"]["Authorization"] == f"Bearer {TOKEN}"
    assert calls["/apikey"]["X-Agent-Key"] == KEY
    bodies = received(httpserver, secret=secret)  # every webhook verifies with the secret
    assert {"run.completed", "step.completed"} <= {body["type"] for body in bodies}

    history = [model for model in apps.get_models() if issubclass(model, HistoricalChanges)]
    places = {
        "API and admin responses": "\n".join(responses),
        "log lines": caplog.text + "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records),
        "audit rows": rows(AuditEvent),
        "history rows": "\n".join(rows(model) for model in history),
        "run logs": rows(RunLog),
        "events": rows(Event) + json.dumps([event.body() for event in Event.objects.all()], default=str),
        "Kafka messages and outbox": json.dumps(engine.messages, default=str) + rows(OutboxMessage),
        "webhook bodies and deliveries": json.dumps(bodies) + rows(Delivery) + rows(DeliveryAttempt),
        "database": whole_database(),
    }
    assert AuditEvent.objects.filter(action="agent.update").count() == 2 and history
    for value in (TOKEN, KEY, secret, secret.removeprefix("whsec_")):
        leaks = [place for place, text in places.items() if value in text]
        assert not leaks, f"{value!r} found in: {', '.join(leaks)}"
