"""Big lists: an unfiltered list of a big table takes PostgreSQL's row estimate instead of a COUNT, a
filtered one counts exactly; filters offer fixed choices (no DISTINCT over the table); the theme's column
headers are worked out once per page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from unfold.templatetags import unfold_list

from core import admin_paging
from runs.models import Event, StepExecution
from tests.core.test_admin_lists import MAKERS, list_url

pytestmark = pytest.mark.django_db


def counts(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the estimate is PostgreSQL's (pg_class.reltuples)")
def test_an_unfiltered_big_list_takes_the_estimate(staff, monkeypatch):
    for i in range(4):
        MAKERS["runs.stepexecution"](i)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE runs_stepexecution")
    monkeypatch.setattr(admin_paging, "ESTIMATE_ABOVE", 2)  # "big" from 3 rows on
    with CaptureQueriesContext(connection) as queries:
        page = staff.get(list_url(StepExecution))
    assert page.context["cl"].result_count == 4 and counts(queries) == []
    with CaptureQueriesContext(connection) as queries:
        filtered = staff.get(list_url(StepExecution), {"status__exact": "FAILED"})
    assert filtered.context["cl"].result_count == 4 and len(counts(queries)) == 1  # exact, and only one


def test_a_small_table_counts_exactly(staff):
    MAKERS["runs.stepexecution"](0)
    with CaptureQueriesContext(connection) as queries:
        page = staff.get(list_url(StepExecution))
    assert page.context["cl"].result_count == 1 and len(counts(queries)) == 1


def test_fixed_choice_filters_read_no_column(staff):
    MAKERS["runs.event"](0)
    with CaptureQueriesContext(connection) as queries:
        html = staff.get(list_url(Event)).content.decode()
    assert not [q for q in queries.captured_queries if "DISTINCT" in q["sql"].upper()]
    assert "run.failed" in html and "step.completed" in html  # offered though no such event exists
    shown = staff.get(list_url(Event), {"type__exact": "run.completed"}).context["cl"].result_list
    assert list(shown) == []


def test_headers_are_worked_out_once_per_page(staff, monkeypatch):
    for i in range(3):
        MAKERS["runs.stepexecution"](i)
    assert unfold_list.result_headers.once_per_page  # installed by core/apps.py
    calls = []
    original = unfold_list.result_headers.original

    def counted(cl):
        calls.append(cl)
        return original(cl)

    monkeypatch.setattr(unfold_list, "result_headers", counted)
    admin_paging.headers_once()  # wraps the counting one (monkeypatch puts the installed one back)
    html = staff.get(list_url(StepExecution)).content.decode()
    assert len(calls) == 1 and html.count("wf-badge") >= 3
