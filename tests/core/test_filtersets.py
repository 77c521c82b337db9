"""The list filters' shared machinery: one form class per FilterSet, the applied filterset kept."""

import importlib

import django_filters
import pytest
from django.http import QueryDict

from agents.filtersets import AgentFilterSet
from agents.models import Agent
from core.api import filters
from runs.filtersets import RunFilterSet
from runs.models import Run
from tests.runs.helpers import workflow_with_agents


def test_a_filterset_class_makes_its_form_class_once():
    first = RunFilterSet({"status": "FAILED"}, queryset=Run.objects.none())
    second = RunFilterSet({"status": "COMPLETED"}, queryset=Run.objects.none())
    assert first.get_form_class() is second.get_form_class()
    other = AgentFilterSet({}, queryset=Agent.objects.none())
    assert other.get_form_class() is not first.get_form_class()
    assert set(other.get_form_class().base_fields) == set(AgentFilterSet.base_filters)


def test_a_shared_form_class_still_validates_each_query_on_its_own():
    bad = RunFilterSet(QueryDict("status=NOPE"), queryset=Run.objects.none())
    good = RunFilterSet(QueryDict("status=FAILED,CANCELLED"), queryset=Run.objects.none())
    assert not bad.is_valid() and "status" in bad.errors
    assert good.is_valid()
    assert good.form.cleaned_data["status"] == ["FAILED", "CANCELLED"]


def test_each_filterset_has_filters_of_its_own_and_method_filters_reach_it():
    first = AgentFilterSet(QueryDict("status=active"), queryset=Agent.objects.all())
    second = AgentFilterSet(QueryDict("status=inactive"), queryset=Agent.objects.all())
    for name, base in AgentFilterSet.base_filters.items():
        assert first.filters[name] is not base and first.filters[name] is not second.filters[name]
        assert first.filters[name].parent is first and second.filters[name].parent is second
    method_filters = [name for name, f in AgentFilterSet.base_filters.items() if f.method]
    assert method_filters  # status: a method of the filterset
    for name in method_filters:
        assert first.filters[name].filter.f is first.filters[name]
        assert first.filters[name].filter.method.__self__ is first
    assert first.is_valid() and second.is_valid()
    assert "status" in str(first.qs.query) and str(first.qs.query) != str(second.qs.query)


def test_every_filterset_uses_the_shared_base():
    # A FilterSet straight from django-filter would make its form class on every request again.
    from django.apps import apps
    from django.conf import settings

    for app in apps.get_app_configs():
        if not app.path.startswith(str(settings.BASE_DIR)) or "site-packages" in app.path:  # ours, not a venv's
            continue
        try:
            module = importlib.import_module(f"{app.name}.filtersets")
        except ModuleNotFoundError:
            continue
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, django_filters.FilterSet):
                assert issubclass(value, filters.FilterSet), value


@pytest.mark.django_db
def test_the_runs_list_validates_its_query_once(viewer, monkeypatch):
    forms_made = []
    original = RunFilterSet.form

    def counting(self):
        if not hasattr(self, "_form"):
            forms_made.append(self)
        return original.fget(self)

    workflow = workflow_with_agents("A")
    for _ in range(2):  # a full first page: its total is counted, not the page's length
        Run.objects.create(
            workflow=workflow,
            workflow_name=workflow.name,
            workflow_version=1,
            plan=workflow.definition,
            status="FAILED",
        )
    monkeypatch.setattr(RunFilterSet, "form", property(counting))
    response = viewer.get("/api/v1/runs", {"status": "FAILED", "page_size": 1})
    assert response.status_code == 200, response.content
    assert response.json()["total"] == 2
    assert len(forms_made) == 1


def test_forms_share_plain_fields_but_not_a_model_choice_fields_rows():
    class WithModel(filters.FilterSet):
        agent = django_filters.ModelChoiceFilter(queryset=Agent.objects.all())

        class Meta:
            model = Agent
            fields = ["name", "agent"]

    first, second = (WithModel(QueryDict(""), queryset=Agent.objects.none()).form for _ in range(2))
    assert first.fields["name"] is second.fields["name"]
    assert first.fields["agent"] is not second.fields["agent"]
    assert first.fields["agent"].queryset is not second.fields["agent"].queryset
