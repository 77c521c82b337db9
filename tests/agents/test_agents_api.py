import json

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from agents.breaker import DEFAULT_CONFIG
from agents.models import Agent
from audit.models import AuditEvent
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/agents"


def payload(**overrides):
    body = {"name": "summarizer", "url": "http://127.0.0.1:9001/", "description": "Summarises."}
    body.update(overrides)
    return body


def error_fields(response):
    return {error["field"] for error in response.json()["errors"]}


def test_create_returns_201_and_stores_the_agent(editor):
    response = editor.post(URL, payload(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "summarizer"
    assert body["status"] == "active"
    assert body["timeout_ms"] == 30000
    assert body["retry_config"] == {
        "max_retries": 3,
        "initial_delay_ms": 1000,
        "max_delay_ms": 30000,
        "backoff_multiplier": 2.0,
    }
    assert body["created_by"] == editor.user.username
    assert body["created_at"] and body["updated_at"]
    assert Agent.objects.get(pk=body["id"]).url == "http://127.0.0.1:9001/"


def test_list_is_paginated_with_metadata(viewer):
    AgentFactory.create_batch(25)
    body = viewer.get(URL, {"page": 2, "page_size": 10}).json()
    assert body["total"] == 25
    assert body["page"] == 2
    assert body["page_size"] == 10
    assert body["total_pages"] == 3
    assert len(body["items"]) == 10
    all_ids = [a["id"] for p in (1, 2, 3) for a in viewer.get(URL, {"page": p, "page_size": 10}).json()["items"]]
    assert len(set(all_ids)) == 25


def test_list_filters_by_name_case_insensitively_and_status(viewer):
    AgentFactory(name="Research-Writer")
    AgentFactory(name="writer-two", status="inactive")
    AgentFactory(name="planner")
    names = {a["name"] for a in viewer.get(URL, {"name": "WRITER"}).json()["items"]}
    assert names == {"Research-Writer", "writer-two"}
    names = {a["name"] for a in viewer.get(URL, {"status": "inactive"}).json()["items"]}
    assert names == {"writer-two"}
    both = viewer.get(URL, {"status": "active,inactive"}).json()
    assert both["total"] == 3
    repeated = viewer.get(f"{URL}?status=active&status=inactive").json()
    assert repeated["total"] == 3


def test_unknown_status_filter_is_422(viewer):
    response = viewer.get(URL, {"status": "sleepy"})
    assert response.status_code == 422
    assert error_fields(response) == {"status"}


def test_list_ordering(viewer):
    for name in ["b", "c", "a"]:
        AgentFactory(name=name)
    assert [a["name"] for a in viewer.get(URL, {"ordering": "name"}).json()["items"]] == ["a", "b", "c"]
    assert [a["name"] for a in viewer.get(URL, {"ordering": "-name"}).json()["items"]] == ["c", "b", "a"]
    legacy = viewer.get(URL, {"sort_by": "name", "sort_order": "desc"}).json()["items"]
    assert [a["name"] for a in legacy] == ["c", "b", "a"]
    default = viewer.get(URL).json()["items"]
    assert [a["name"] for a in default] == ["a", "c", "b"]  # newest first


def test_detail(viewer):
    agent = AgentFactory(name="detail-me")
    body = viewer.get(f"{URL}/{agent.id}").json()
    assert body["id"] == str(agent.id)
    assert body["name"] == "detail-me"


def test_put_replaces_and_patch_updates_part(editor):
    agent = AgentFactory(name="old", timeout_ms=5000)
    response = editor.put(
        f"{URL}/{agent.id}", payload(name="new", url="https://agents.example.com/a2a", timeout_ms=60000), format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "new"
    assert response.json()["timeout_ms"] == 60000
    assert response.json()["updated_by"] == editor.user.username
    response = editor.patch(f"{URL}/{agent.id}", {"retry_config": {"max_retries": 5}}, format="json")
    assert response.status_code == 200
    assert response.json()["retry_config"]["max_retries"] == 5
    assert response.json()["retry_config"]["initial_delay_ms"] == 1000
    agent.refresh_from_db()
    assert (agent.name, agent.url, agent.retry_config["max_retries"]) == ("new", "https://agents.example.com/a2a", 5)


def test_put_keeps_the_fields_left_out(editor):
    # As in the older API (its web UI sends no name when it edits): tests/agents/test_agents_put.py has more.
    agent = AgentFactory()
    response = editor.put(f"{URL}/{agent.id}", {"description": "only this"}, format="json")
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["url"]) == (agent.name, agent.url)


def test_delete_is_a_soft_delete(editor):
    agent = AgentFactory(name="gone")
    response = editor.delete(f"{URL}/{agent.id}")
    assert response.status_code == 204
    agent.refresh_from_db()
    assert agent.status == "deleted" and agent.deleted_at is not None
    assert editor.get(f"{URL}/{agent.id}").status_code == 404
    assert editor.get(URL).json()["total"] == 0
    deleted = editor.get(URL, {"status": "deleted"}).json()
    assert [a["name"] for a in deleted["items"]] == ["gone"]
    assert editor.delete(f"{URL}/{agent.id}").status_code == 404
    assert editor.put(f"{URL}/{agent.id}", payload(), format="json").status_code == 404
    # the name is free again
    assert editor.post(URL, payload(name="gone"), format="json").status_code == 201


def test_duplicate_active_name_is_409(editor):
    AgentFactory(name="dup")
    response = editor.post(URL, payload(name="dup"), format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert "dup" in response.json()["detail"]
    other = AgentFactory(name="other")
    assert editor.patch(f"{URL}/{other.id}", {"name": "dup"}, format="json").status_code == 409
    AgentFactory(name="paused", status="inactive")
    assert editor.post(URL, payload(name="paused"), format="json").status_code == 409


def test_status_cannot_be_set_to_deleted_through_update(editor):
    agent = AgentFactory()
    response = editor.patch(f"{URL}/{agent.id}", {"status": "deleted"}, format="json")
    assert response.status_code == 422
    assert editor.patch(f"{URL}/{agent.id}", {"status": "inactive"}, format="json").json()["status"] == "inactive"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/agent"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"name": "x" * 256}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 12}, "name"),
        ({"description": "d" * 10_001}, "description"),
        ({"timeout_ms": 999}, "timeout_ms"),
        ({"timeout_ms": 300_001}, "timeout_ms"),
        ({"timeout_ms": "fast"}, "timeout_ms"),
        ({"retry_config": {"max_retries": 11}}, "retry_config.max_retries"),
        ({"retry_config": {"initial_delay_ms": 5000, "max_delay_ms": 10}}, "retry_config.max_delay_ms"),
        ({"retry_config": {"jitter": True}}, "retry_config.jitter"),
        ({"auth_type": "oauth"}, "auth_type"),
        ({"auth_type": "bearer"}, "auth_config.token"),
        ({"auth_type": "bearer", "auth_config": {"token": 5}}, "auth_config.token"),
        ({"auth_type": "apikey", "auth_config": {"header_name": "X-Key"}}, "auth_config.key"),
        ({"auth_type": "none", "auth_config": {"token": "t"}}, "auth_config.token"),
        ({"auth_type": "bearer", "auth_config": "token"}, "auth_config"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_422_with_the_field_path(editor, body, field):
    response = editor.post(URL, payload(**body), format="json")
    assert response.status_code == 422, response.content
    data = response.json()
    assert data["error"] == "validation_error"
    assert field in error_fields(response)
    assert Agent.objects.count() == 0


def test_missing_required_fields_are_all_reported(editor):
    response = editor.post(URL, {}, format="json")
    assert response.status_code == 422
    assert error_fields(response) == {"name", "url"}


def test_secrets_are_masked_in_every_response(editor):
    created = editor.post(
        URL, payload(auth_type="bearer", auth_config={"token": "super-secret-token"}), format="json"
    ).json()
    assert created["auth_config"] == {"token": "********"}
    assert "super-secret-token" not in editor.get(f"{URL}/{created['id']}").content.decode()
    assert "super-secret-token" not in editor.get(URL).content.decode()
    assert Agent.objects.get(pk=created["id"]).auth_config == {"token": "super-secret-token"}


def test_masked_secret_sent_back_keeps_the_stored_one(editor):
    created = editor.post(
        URL, payload(auth_type="apikey", auth_config={"key": "k-123", "header_name": "X-Agent-Key"}), format="json"
    ).json()
    assert created["auth_config"] == {"key": "********", "header_name": "X-Agent-Key"}
    body = {**payload(), "auth_type": "apikey", "auth_config": created["auth_config"], "description": "changed"}
    assert editor.put(f"{URL}/{created['id']}", body, format="json").status_code == 200
    assert Agent.objects.get(pk=created["id"]).auth_config == {"key": "k-123", "header_name": "X-Agent-Key"}
    # switching the auth type needs the new type's secret
    response = editor.patch(f"{URL}/{created['id']}", {"auth_type": "bearer"}, format="json")
    assert response.status_code == 422
    assert "auth_config.token" in error_fields(response)


def test_apikey_header_defaults(editor):
    created = editor.post(URL, payload(auth_type="apikey", auth_config={"key": "k"}), format="json").json()
    assert created["auth_config"] == {"key": "********", "header_name": "X-API-Key"}


def test_read_only_fields_sent_back_are_ignored(editor):
    agent = AgentFactory(name="keep")
    body = editor.get(f"{URL}/{agent.id}").json()
    body["description"] = "edited"
    body["id"] = "00000000-0000-0000-0000-000000000000"
    response = editor.put(f"{URL}/{agent.id}", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(agent.id)
    assert response.json()["description"] == "edited"


def test_representation_matches_the_declared_fields_and_drf(viewer):
    from rest_framework import serializers as drf

    from agents.api.serializers import AgentSerializer

    agent = AgentFactory(auth_type="bearer", auth_config={"token": "t"}, created_by="amy", updated_by="bob")
    body = viewer.get(f"{URL}/{agent.id}").json()
    assert list(body) == list(AgentSerializer().fields)
    generic = drf.ModelSerializer.to_representation(AgentSerializer(), agent)
    # The breaker: the configuration in force (null stored = the defaults) and its state from the store.
    breaker = {"circuit_breaker_config": DEFAULT_CONFIG, "circuit_state": body["circuit_state"]}
    assert body == {**generic, "status": "active", **breaker}


def test_list_query_count_does_not_grow_with_rows(viewer, django_assert_max_num_queries, settings):
    viewer.get(URL)  # the key's first use records last_used_at
    breakers = 0 if settings.REDIS_URL else 1  # the page's circuit breaker states, in one read of their table
    AgentFactory.create_batch(5)
    with django_assert_max_num_queries(2 + breakers):  # key lookup, page (a short first page needs no COUNT)
        assert viewer.get(URL).json()["total"] == 5
    AgentFactory.create_batch(60)
    version = 1 if connection.vendor == "postgresql" else 0  # the table's version (core/api/totals.py)
    with django_assert_max_num_queries(3 + version + breakers):  # key lookup, page, version, COUNT
        assert viewer.get(URL, {"page_size": 50}).json()["total"] == 65
    # PostgreSQL: key lookup, version, page (the same filters' total is kept); elsewhere key, COUNT, page
    with django_assert_max_num_queries(3 + breakers):
        assert len(viewer.get(URL, {"page": 2, "page_size": 50}).json()["items"]) == 15


def test_max_concurrency_is_unlimited_by_default_and_can_be_set_and_cleared(editor):
    created = editor.post(URL, payload(), format="json").json()
    assert created["max_concurrency"] is None
    response = editor.patch(f"{URL}/{created['id']}", {"max_concurrency": 3}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["max_concurrency"] == 3
    assert Agent.objects.get(pk=created["id"]).max_concurrency == 3
    assert (
        editor.patch(f"{URL}/{created['id']}", {"max_concurrency": None}, format="json").json()["max_concurrency"]
        is None
    )
    changes = [e.changes["max_concurrency"] for e in AuditEvent.objects.filter(action="agent.update")]
    assert sorted(changes, key=str) == [[3, None], [None, 3]]


@pytest.mark.parametrize("value", [0, -1, 10_001, 1.5, "many", True, [2]])
def test_bad_max_concurrency_is_422_on_its_field(editor, value):
    response = editor.post(URL, payload(max_concurrency=value), format="json")
    assert response.status_code == 422, response.content
    assert error_fields(response) == {"max_concurrency"}


def test_max_concurrency_is_edited_in_the_admin():
    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    agent = AgentFactory(name="limited")
    client = Client()
    client.force_login(staff)
    form = {"name": "limited", "url": agent.url, "description": "", "timeout_ms": agent.timeout_ms}
    form |= {"retry_config": json.dumps(agent.retry_config), "status": "active", "max_concurrency": 2}
    assert client.post(f"/admin/agents/agent/{agent.id}/change/", form).status_code == 302
    agent.refresh_from_db()
    assert agent.max_concurrency == 2
    form["max_concurrency"] = 0
    page = client.post(f"/admin/agents/agent/{agent.id}/change/", form)
    assert page.status_code == 200 and "greater than or equal to 1" in page.content.decode()
