"""The admin index as a dashboard: its figures on a known data set (tests/dashboard/data.py), the
filtered list behind each figure, a fixed number of queries, and only the sections the user may view."""

import html
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.roles import Role
from dashboard import queries
from runs.models import Run
from tests.dashboard import data
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def database_circuits(settings):
    settings.REDIS_URL = None  # the circuit states from the database store (AgentCircuit rows)


def figure(body: str, element_id: str) -> tuple[str, str]:
    """(the href, the number shown) of the link with that id."""
    found = re.search(rf'<a ([^>]*id="{re.escape(element_id)}"[^>]*)>(.*?)</a>', body, re.S)
    assert found, f"no figure {element_id}"
    href = re.search(r'href="([^"]*)"', found[1])[1]
    shown = re.sub(r'<span class="wf-kpi-label">.*?</span>|<[^>]+>', " ", found[2], flags=re.S)
    return html.unescape(href), next(word for word in shown.split() if word.isdigit())


def listed(client, href: str) -> int:
    response = client.get(href)
    assert response.status_code == 200, href
    return response.context["cl"].result_count


def test_run_figures_per_window_and_their_lists(staff):
    data.build()
    body = staff.get("/admin/").content.decode()
    for window, expected in data.EXPECTED.items():
        href, text = figure(body, f"fig-runs-{window}")
        assert int(text) == expected["total"] == listed(staff, href)
        href, text = figure(body, f"fig-failed-{window}")
        assert int(text) == expected["FAILED"] == listed(staff, href)
        assert "status__exact=FAILED" in href and "created_at__gte=" in href
        for status in ("COMPLETED", "FAILED", "CANCELLED", "RUNNING", "PENDING", "PAUSED"):
            href, text = figure(body, f"fig-{window}-{status}")
            assert int(text) == expected.get(status, 0) == listed(staff, href), (window, status)
        rate = re.search(rf'id="fig-rate-{window}">([^<]*)<', body)[1]
        assert rate.startswith(expected["rate"])


def test_the_charts_carry_the_counts_per_bucket(staff):
    data.build()
    response = staff.get("/admin/")
    runs = response.context["dashboard"]["runs"]
    hourly, daily = json.loads(runs["hourly"]), json.loads(runs["daily"])
    assert len(hourly["labels"]) == 24 and len(daily["labels"]) == 7
    by_status = {dataset["label"].upper(): sum(dataset["data"]) for dataset in hourly["datasets"]}
    # The hourly chart's 24 bars start at the top of the hour 23 h ago: the 1 h old runs, not the 30 h old.
    assert by_status == {"COMPLETED": 3, "FAILED": 1, "CANCELLED": 0, "RUNNING": 1, "PENDING": 0, "PAUSED": 0}
    weekly = {dataset["label"].upper(): sum(dataset["data"]) for dataset in daily["datasets"]}
    # 7 UTC days from the start of the day 6 days ago: all the runs of the 7 d window (none is 6-7 d old).
    assert weekly["COMPLETED"] == 4 and weekly["FAILED"] == 3 and weekly["CANCELLED"] == 1
    assert b'class="chart"' in response.content and b'data-type="bar"' in response.content


@pytest.mark.parametrize(
    ("window", "p95", "calls"), [("24h", data.P95_24H, data.CALLS_24H), ("7d", data.P95_7D, data.CALLS_7D)]
)
def test_slowest_steps_and_busiest_agents(staff, window, p95, calls):
    data.build()
    response = staff.get(f"/admin/?window={window}")
    dashboard = response.context["dashboard"]
    assert {row["step_id"]: row["p95_ms"] for row in dashboard["steps"]} == pytest.approx(p95)
    assert [row["step_id"] for row in dashboard["steps"]] == sorted(p95, key=p95.get, reverse=True)
    for row in dashboard["steps"]:
        assert listed(staff, row["href"]) == row["n"]
    assert {row["agent_name"]: row["calls"] for row in dashboard["agents"]} == calls
    for row in dashboard["agents"]:
        assert listed(staff, row["href"]) == row["calls"]
        assert listed(staff, row["failed_href"]) == row["failed"]


def test_p95_is_percentile_cont_on_either_database():
    values = [100, 200, 300, 400, 1000]
    assert queries.percentile(values, 0.95) == pytest.approx(880.0)
    assert queries.percentile([7], 0.95) == 7


@pytest.mark.parametrize("steps_run_is_newest", [True, False])
def test_a_busy_window_reads_the_steps_of_its_newest_runs(staff, monkeypatch, steps_run_is_newest):
    built = data.build()
    monkeypatch.setattr(queries, "RUN_SAMPLE", 1)
    # Every step try of the data set belongs to one run: the newest of the window, or not.
    age = timedelta(minutes=30 if steps_run_is_newest else 2 * 60 + 30)
    Run.objects.filter(pk=built["steps_run"].pk).update(created_at=timezone.now() - age)
    if not steps_run_is_newest:
        Run.objects.exclude(pk=built["steps_run"].pk).filter(
            created_at__gte=timezone.now() - timedelta(hours=2)
        ).update(created_at=timezone.now() - timedelta(minutes=30))
    response = staff.get("/admin/?window=7d")
    dashboard = response.context["dashboard"]
    assert dashboard["sampled"] and b'id="wf-sampled"' in response.content
    if steps_run_is_newest:
        assert {row["step_id"]: row["p95_ms"] for row in dashboard["steps"]} == pytest.approx(data.P95_7D)
    else:
        assert dashboard["steps"] == [] and dashboard["agents"] == []


def test_backlogs_and_failing_agents(staff):
    built = data.build()
    body = staff.get("/admin/").content.decode()
    for element_id, expected in (
        ("fig-outbox-pending", 2),
        ("fig-outbox-dead", 1),
        ("fig-webhooks-pending", 2),
        ("fig-webhooks-sending", 0),
        ("fig-webhooks-retrying", 1),
        ("fig-webhooks-failed", 1),
    ):
        href, text = figure(body, element_id)
        assert int(text) == expected == listed(staff, href), element_id
    href, text = figure(body, "fig-failing")
    assert int(text) == 1 and href == "/admin/agents/agent/"
    assert f"/admin/agents/agent/{built['agent_b'].pk}/change/" in body
    assert "connection refused &lt;b&gt;" in body  # the agent's error, escaped


def count_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/admin/").status_code == 200
    return len(captured)


def test_the_number_of_queries_does_not_grow_with_the_data(staff):
    built = data.build()
    small = count_queries(staff)
    data.build(scale=20, workflow=built["workflow"])
    assert count_queries(staff) == small
    assert small <= 12


def test_sections_follow_view_permissions():
    user = UserFactory(username="runs-only", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_run"))
    client = Client()
    client.force_login(user)
    data.build()
    body = client.get("/admin/").content.decode()
    assert 'id="fig-runs-24h"' in body
    for absent in ("wf-slowest-steps", "wf-busiest-agents", "wf-failing-agents", "wf-outbox", "wf-webhooks"):
        assert f'id="{absent}"' not in body, absent


def test_webhooks_need_the_admin_role_as_everywhere():
    user = UserFactory(username="operator-with-perms", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=Role.OPERATOR)[0])
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_delivery", "view_outboxmessage"]))
    client = Client()
    client.force_login(user)
    body = client.get("/admin/").content.decode()
    assert 'id="wf-outbox"' in body and 'id="wf-webhooks"' not in body
    assert 'id="fig-runs-24h"' not in body


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the run counters are PostgreSQL's")
def test_counted_from_the_run_counters_as_from_the_runs(monkeypatch):
    # Runs just inside and just outside both windows' starts (their partial hours), and in whole hours.
    data.build()
    now = timezone.now()
    workflow = Run.objects.first().workflow
    for age in (
        timedelta(hours=24) - timedelta(seconds=5),
        timedelta(hours=24, seconds=5),
        timedelta(days=7) - timedelta(seconds=5),
        timedelta(days=7, seconds=5),
        timedelta(minutes=1),
    ):
        for status in ("COMPLETED", "FAILED"):
            run = Run.objects.create(workflow=workflow, workflow_name="w", workflow_version=1, plan={}, status=status)
            Run.objects.filter(pk=run.pk).update(created_at=now - age)
    windows = queries.Windows(now=now)
    counted = queries.run_counts(windows)
    monkeypatch.setattr(queries, "counters_available", lambda: False)
    plain = queries.run_counts(windows)
    plain["day"] = {status: n for status, n in plain["day"].items() if n}  # a filtered count's zeros
    assert counted == plain
    assert counted["day"]["COMPLETED"] == data.EXPECTED["24h"]["COMPLETED"] + 2
