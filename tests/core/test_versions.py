"""Values read from rarely written tables are kept per process while the table's version is unchanged
(core/versions.py): any write, by any path, is seen by the next read."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from agents.choices import AgentStatus
from agents.models import Agent
from core import versions
from runs.decider import live_agent
from tests.factories import AgentFactory
from webhooks.dispatch import active_endpoints
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db
postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="the version trigger is PostgreSQL's")


def counting(compute):
    calls = []

    def counted():
        calls.append(1)
        return compute()

    return counted, calls


@postgresql
def test_a_value_is_read_once_while_the_table_is_unchanged_and_again_after_any_write():
    AgentFactory(name="kept")
    read, calls = counting(lambda: list(Agent.objects.values_list("name", flat=True)))
    assert versions.kept("agents_agent", "names", read) == ["kept"]
    assert versions.kept("agents_agent", "names", read) == ["kept"]
    assert len(calls) == 1
    Agent.objects.filter(name="kept").update(description="changed")  # a bulk update: no signal, no save()
    versions.kept("agents_agent", "names", read)
    assert len(calls) == 2
    with transaction.atomic():
        AgentFactory(name="other")  # seen by its own transaction at once
        assert sorted(versions.kept("agents_agent", "names", read)) == ["kept", "other"]
        transaction.set_rollback(True)
    assert versions.kept("agents_agent", "names", read) == ["kept"]  # the rolled-back write is gone


def test_without_a_version_every_call_reads(settings):
    read, calls = counting(lambda: 1)
    versions.kept("no_such_table", "k", read)
    versions.kept("no_such_table", "k", read)
    assert len(calls) == 2


def test_an_agent_made_inactive_is_seen_by_the_next_dispatch():
    agent = AgentFactory(name="switch")
    assert live_agent("switch").status == AgentStatus.ACTIVE
    first = live_agent("switch")
    first.status = "changed by a caller"  # each caller gets its own copy
    assert live_agent("switch").status == AgentStatus.ACTIVE
    agent.status = AgentStatus.INACTIVE
    agent.save(update_fields=["status"])
    assert live_agent("switch").status == AgentStatus.INACTIVE
    Agent.objects.filter(pk=agent.pk).update(status=AgentStatus.DELETED)
    assert live_agent("switch") is None


def test_a_new_or_deactivated_webhook_endpoint_is_seen_at_the_next_event():
    assert active_endpoints() == [] and versions.kept("webhooks_webhookendpoint", "active", active_endpoints) == []
    endpoint = WebhookEndpoint.objects.create(url="https://example.com/hook", event_types=["*"], secret="whsec_x")
    assert [e.id for e in versions.kept("webhooks_webhookendpoint", "active", active_endpoints)] == [endpoint.id]
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    assert versions.kept("webhooks_webhookendpoint", "active", active_endpoints) == []


@postgresql
def test_in_a_versions_once_block_every_table_version_is_read_in_one_query_and_again_after_it():
    AgentFactory(name="kept")
    outside = {table: versions.table_version(table) for table in ("agents_agent", "webhooks_webhookendpoint")}
    with CaptureQueriesContext(connection) as queries, versions.versions_once():
        inside = {table: versions.table_version(table) for table in ("agents_agent", "webhooks_webhookendpoint")}
        assert versions.table_version("no_such_table") is None
    assert inside == outside and None not in inside.values()
    assert len(queries.captured_queries) == 1
    Agent.objects.filter(name="kept").update(description="changed")
    with versions.versions_once():  # a new block reads them again
        assert versions.table_version("agents_agent") != inside["agents_agent"]
