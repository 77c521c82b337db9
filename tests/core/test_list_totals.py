"""Agents and workflows lists reuse their exact totals while the table is unchanged (core/api/totals.py):
a statement trigger versions the table, so every kind of write, bulk and raw SQL included, counts again."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from agents.models import Agent
from tests.factories import AgentFactory
from workflows.services import workflow_create

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the version trigger is PostgreSQL's")


def total(client, path: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return response.json()["total"], [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]


@pytest.mark.django_db
def test_a_second_look_at_an_unchanged_list_counts_nothing(viewer):
    AgentFactory.create_batch(25)
    assert total(viewer, "/api/v1/agents?page_size=10")[0] == 25
    found, counts = total(viewer, "/api/v1/agents?page_size=10")
    assert found == 25 and counts == []
    found, counts = total(viewer, "/api/v1/agents?page_size=10&page=2")  # same filters, another page
    assert found == 25 and counts == []


@pytest.mark.django_db
def test_every_kind_of_write_is_seen_at_once(viewer):
    AgentFactory.create_batch(25)
    assert total(viewer, "/api/v1/agents?page_size=10")[0] == 25
    Agent.objects.bulk_create([Agent(name=f"bulk-{n}", url=f"http://127.0.0.1:8{n:03d}/") for n in range(3)])
    assert total(viewer, "/api/v1/agents?page_size=10")[0] == 28  # bulk_create sends no signal
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM agents_agent WHERE name LIKE 'bulk-%%'")
    assert total(viewer, "/api/v1/agents?page_size=10")[0] == 25
    assert total(viewer, "/api/v1/agents?page_size=10&status=inactive")[0] == 0
    Agent.objects.filter(pk__in=list(Agent.objects.values_list("pk", flat=True)[:12])).update(status="inactive")
    assert total(viewer, "/api/v1/agents?page_size=10&status=inactive")[0] == 12
    assert total(viewer, "/api/v1/agents?page_size=10&status=active")[0] == 13


@pytest.mark.django_db
def test_a_rolled_back_write_leaves_the_total_as_it_was(viewer):
    AgentFactory.create_batch(25)
    assert total(viewer, "/api/v1/agents?page_size=10")[0] == 25
    with pytest.raises(RuntimeError), transaction.atomic():
        AgentFactory.create_batch(5)
        assert total(viewer, "/api/v1/agents?page_size=10")[0] == 30  # the writer sees its own rows
        raise RuntimeError("undo")
    assert total(viewer, "/api/v1/agents?page_size=10")[0] == 25


@pytest.mark.django_db
def test_workflows_too(editor):
    AgentFactory(name="A")
    for n in range(21):
        workflow_create(
            user=None, definition={"name": f"w{n}", "start_step": "s", "steps": {"s": {"id": "s", "agent_name": "A"}}}
        )
    assert total(editor, "/api/v1/workflows")[0] == 21
    assert total(editor, "/api/v1/workflows")[1] == []
    response = editor.delete(f"/api/v1/workflows/{editor.get('/api/v1/workflows').json()['items'][0]['id']}")
    assert response.status_code == 204
    assert total(editor, "/api/v1/workflows")[0] == 20


@pytest.mark.django_db
def test_a_kept_total_is_the_count_of_every_shape_of_query(viewer):
    from django.db.models import Q

    from core.api.totals import versioned_count

    agents = AgentFactory.create_batch(6)
    Agent.objects.filter(pk=agents[0].pk).update(name="special-one")
    shapes = [
        Agent.objects.all(),
        Agent.objects.filter(pk__in=[]),  # no row can match
        Agent.objects.filter(~Q(pk__in=[])),  # every row matches
        Agent.objects.filter(name__icontains="special"),
        Agent.objects.filter(name__icontains="SPECIAL"),  # another parameter: another key
        Agent.objects.filter(pk__in=Agent.objects.filter(name="special-one").values("pk")),
        Agent.objects.filter(name__startswith="special").distinct(),
        Agent.objects.filter(name__startswith="special")[:0],
    ]
    for _ in range(2):  # the second time from the kept totals
        assert [versioned_count(qs) for qs in shapes] == [qs.count() for qs in shapes] == [6, 0, 6, 1, 1, 1, 1, 0]
