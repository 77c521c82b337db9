"""Idempotency-Key on POST /workflows/{id}/execute, through HTTP."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from core.models import OutboxMessage
from core.roles import Role
from core.services import api_key_create
from runs import idempotency
from runs.models import IdempotencyKey, Run
from runs.tasks import idempotency_keys_purge
from tests.runs.helpers import workflow_with_agents

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="concurrent writers: PostgreSQL (SQLite serializes them; see docs/execution.md)",
)


def execute(client, workflow, key, input_data=None):
    body = {"input_data": input_data if input_data is not None else {"text": "hi"}}
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(f"/api/v1/workflows/{workflow.id}/execute", body, format="json", **headers)


def client_with_key(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    return client


def test_the_same_key_and_body_answer_with_the_first_run_and_create_nothing(operator):
    workflow = workflow_with_agents("a")
    first = execute(operator, workflow, "order-1")
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    again = execute(operator, workflow, "order-1")
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and again.headers["Location"] == first.headers["Location"]
    assert Run.objects.count() == 1
    assert AuditEvent.objects.filter(action="run.execute").count() == 1  # the replay writes no audit
    assert OutboxMessage.objects.filter(topic=settings.KAFKA_EXECUTION_TOPIC).count() == 1


def test_the_same_key_with_another_body_or_workflow_is_422_reused(operator):
    workflow, other = workflow_with_agents("a"), workflow_with_agents("b", name="other")
    assert execute(operator, workflow, "k", {"text": "one"}).status_code == 202
    for response in (execute(operator, workflow, "k", {"text": "two"}), execute(operator, other, "k", {"text": "one"})):
        assert response.status_code == 422
        body = response.json()
        assert body["error"] == "idempotency_key_reused"
        assert [e["field"] for e in body["errors"]] == ["Idempotency-Key"]
    assert Run.objects.count() == 1


@pytest.mark.parametrize("key", ["", "x" * 256])
def test_a_key_not_1_to_255_characters_is_422_on_the_header(operator, key):
    response = execute(operator, workflow_with_agents("a"), key)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["Idempotency-Key"]
    assert Run.objects.count() == 0


def test_a_255_character_key_is_kept(operator):
    workflow = workflow_with_agents("a")
    first = execute(operator, workflow, "k" * 255)
    assert execute(operator, workflow, "k" * 255).json()["id"] == first.json()["id"]


def test_keys_are_per_user_and_an_api_key_acts_as_its_user(operator, client_for):
    workflow = workflow_with_agents("a")
    first = execute(operator, workflow, "shared").json()["id"]
    _, raw = api_key_create(user=operator.user, role=Role.OPERATOR, name="second key")
    assert execute(client_with_key(raw), workflow, "shared").json()["id"] == first  # same user, other API key
    someone = client_for(Role.OPERATOR, username="someone-else")
    other = execute(someone, workflow, "shared")
    assert other.status_code == 202 and other.json()["id"] != first and "Idempotent-Replayed" not in other.headers


def test_a_refused_request_does_not_use_the_key_up(operator):
    schema = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
    workflow = workflow_with_agents("a", input_schema=schema)
    assert execute(operator, workflow, "k", {}).status_code == 422
    assert IdempotencyKey.objects.count() == 0
    assert execute(operator, workflow, "k", {}).status_code == 422  # checked again, not replayed
    assert execute(operator, workflow, "k", {"text": "ok"}).status_code == 202


def test_without_a_key_every_request_is_a_new_run(operator):
    workflow = workflow_with_agents("a")
    assert execute(operator, workflow, None).json()["id"] != execute(operator, workflow, None).json()["id"]


def test_an_expired_key_starts_a_new_run_and_the_purge_deletes_it(operator, settings):
    workflow = workflow_with_agents("a")
    first = execute(operator, workflow, "old").json()["id"]
    IdempotencyKey.objects.update(
        created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS, minutes=1)
    )
    second = execute(operator, workflow, "old")
    assert second.status_code == 202 and second.json()["id"] != first and "Idempotent-Replayed" not in second.headers
    assert execute(operator, workflow, "expiring").status_code == 202
    IdempotencyKey.objects.filter(key="expiring").update(created_at=timezone.now() - timedelta(days=2))
    assert idempotency_keys_purge() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["old"]
    assert "idempotency-purge" in settings.CELERY_BEAT_SCHEDULE


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_identical_requests_create_exactly_one_run(operator):
    workflow = workflow_with_agents("a")
    barrier, answers = threading.Barrier(50), []

    def send():
        try:
            barrier.wait()
            response = execute(client_with_key(operator.raw_key), workflow, "burst")
            answers.append((response.status_code, response.headers.get("Idempotent-Replayed"), response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 50
    assert Run.objects.count() == 1 and IdempotencyKey.objects.count() == 1
    run_id = str(Run.objects.get().id)
    assert {code for code, _, _ in answers} <= {202, 409}, answers
    created = [body for code, replayed, body in answers if code == 202 and replayed is None]
    assert len(created) == 1 and created[0]["id"] == run_id
    assert all(body["id"] == run_id for code, _, body in answers if code == 202)
    assert all(body["error"] == "conflict" for code, _, body in answers if code == 409)
    assert AuditEvent.objects.filter(action="run.execute").count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_duplicate_while_the_first_is_being_handled_is_409(operator, monkeypatch):
    workflow = workflow_with_agents("a")
    inside, release, first = threading.Event(), threading.Event(), []
    real = idempotency.run_execute

    def slow(**kwargs):  # the first request stays inside its transaction until released
        run = real(**kwargs)
        inside.set()
        release.wait(10)
        return run

    monkeypatch.setattr(idempotency, "run_execute", slow)

    def send_first():
        try:
            first.append(execute(client_with_key(operator.raw_key), workflow, "slow"))
        finally:
            connection.close()

    thread = threading.Thread(target=send_first)
    thread.start()
    assert inside.wait(10)
    duplicate = execute(operator, workflow, "slow")
    release.set()
    thread.join()
    assert duplicate.status_code == 409 and "being handled" in duplicate.json()["detail"]
    assert first[0].status_code == 202
    replay = execute(operator, workflow, "slow")
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json()["id"] == first[0].json()["id"]
    assert Run.objects.count() == 1
