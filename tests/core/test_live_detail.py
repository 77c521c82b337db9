"""A detail GET of a soft-deleted resource reads its row by SQL built once (SoftDeleteViewSet.get_object):
it must find exactly the rows the model's live() finds, for every status."""

import pytest

from agents.api.views import AgentViewSet
from core.api.viewsets import SoftDeleteViewSet
from tests.factories import AgentFactory
from tests.runs.helpers import workflow_with_agents
from workflows.api.views import WorkflowViewSet

pytestmark = pytest.mark.django_db


def test_every_soft_delete_viewset_names_its_live_statuses():
    assert set(SoftDeleteViewSet.__subclasses__()) == {AgentViewSet, WorkflowViewSet}
    assert all(viewset.live_statuses for viewset in SoftDeleteViewSet.__subclasses__())


@pytest.mark.parametrize("make,path", [(AgentFactory, "agents"), (lambda: workflow_with_agents("a"), "workflows")])
def test_a_detail_get_finds_what_live_finds(viewer, make, path):
    obj = make()
    model = type(obj)
    seen = []
    for status, _ in model._meta.get_field("status").choices:
        model.objects.filter(pk=obj.pk).update(status=status)
        response = viewer.get(f"/api/v1/{path}/{obj.pk}")
        expected = model.objects.live().filter(pk=obj.pk).exists()
        assert response.status_code == (200 if expected else 404), status
        if expected:
            assert response.json()["status"] == status and response.json()["id"] == str(obj.pk)
        seen.append(expected)
    assert True in seen and False in seen  # live and deleted statuses both tried
