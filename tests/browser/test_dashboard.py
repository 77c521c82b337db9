"""The dashboard in a real browser: the figures and the charts are drawn, and a figure leads to the
filtered list behind it."""

import re

import pytest
from django.contrib.auth.models import Permission

from tests.browser.conftest import in_thread, shot
from tests.dashboard import data

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture
def known_data(transactional_db, settings, staff_admin):
    settings.REDIS_URL = None  # the open circuit of data.build() is an AgentCircuit row
    # The outbox and webhook sections too (the admin role is the staff user's already).
    perms = Permission.objects.filter(codename__in=["view_outboxmessage", "view_delivery", "view_webhookendpoint"])
    staff_admin.user_permissions.add(*perms)
    return data.build()


def test_the_dashboard_shows_its_figures_and_charts(known_data, page):
    page.goto(f"{page.base}/admin/")
    assert page.locator("#fig-runs-24h .wf-kpi-value").inner_text() == str(data.EXPECTED["24h"]["total"])
    assert page.locator("#fig-runs-7d .wf-kpi-value").inner_text() == str(data.EXPECTED["7d"]["total"])
    assert page.locator("#fig-rate-7d").inner_text().startswith(data.EXPECTED["7d"]["rate"])
    # Both charts were drawn by the bundled Chart.js, with the runs of each status.
    drawn = page.evaluate(
        """() => [...document.querySelectorAll('canvas.chart')].map(canvas => {
            const chart = Chart.getChart(canvas);
            return chart && chart.data.datasets.reduce((n, d) => n + d.data.reduce((a, b) => a + b, 0), 0);
        })"""
    )
    assert drawn == [data.EXPECTED["24h"]["total"], data.EXPECTED["7d"]["total"]]
    assert page.locator("#wf-slowest-steps").get_by_text("880 ms").is_visible()
    assert page.locator("#wf-failing-agents").get_by_text("b", exact=True).is_visible()
    assert page.locator("#fig-outbox-pending").inner_text().split()[0] == "2"
    assert page.locator("#fig-webhooks-retrying").inner_text().split()[0] == "1"
    shot(page, "dashboard")

    page.click("#fig-7d-FAILED")
    page.wait_for_url(re.compile(r"/admin/runs/run/\?.*status__exact=FAILED"))
    shown = page.locator("#result_list tbody tr")
    assert shown.count() == data.EXPECTED["7d"]["FAILED"]
    shot(page, "dashboard-failed-runs")


def test_a_slowest_step_leads_to_its_tries(known_data, page):
    page.goto(f"{page.base}/admin/?window=7d")
    assert page.locator("#window-7d").get_attribute("class").endswith("wf-window-on")
    page.locator("#wf-slowest-steps a[data-step=s2]").click()
    page.wait_for_url(re.compile(r"/admin/runs/stepexecution/\?"))
    assert page.locator("#result_list tbody tr").count() == 3
    expected = in_thread(lambda: known_data["workflow"].name)
    assert expected in page.content()  # the workflow filter shows the one chosen
