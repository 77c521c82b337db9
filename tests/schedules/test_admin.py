"""The admin: list and edit schedules through the services, with the next five due times on the page."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import AuditEvent
from tests.schedules.helpers import schedule_make
from tests.support.admin_forms import form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("boss", "", "pw-123456-long"))
    return client


def test_change_page_shows_the_next_five_due_times(staff, clock):  # a winter day: CET
    schedule = schedule_make(name="nightly", cron="30 2 * * *", timezone="Europe/Paris")
    page = staff.get(f"/admin/schedules/schedule/{schedule.pk}/change/").content.decode()
    assert "Next 5 due times" in page
    times = re.findall(r"(2026-01-\d\d) 01:30 UTC <small>\(\1 02:30 CET, Europe/Paris\)", page)
    assert times == ["2026-01-06", "2026-01-07", "2026-01-08", "2026-01-09", "2026-01-10"]
    assert "nightly" in staff.get("/admin/schedules/schedule/").content.decode()


def test_edit_goes_through_the_services(staff):
    schedule = schedule_make(cron="*/5 * * * *")
    url = f"/admin/schedules/schedule/{schedule.pk}/change/"
    data = {**form_data(staff.get(url).content.decode(), "schedule_form"), "cron": "61 * * * *"}
    response = staff.post(url, data)
    assert response.status_code == 302  # the service's 422 is shown as a message, nothing saved
    schedule.refresh_from_db()
    assert schedule.cron == "*/5 * * * *"
    data["cron"] = "0 4 * * *"
    assert staff.post(url, data).status_code == 302
    schedule.refresh_from_db()
    assert schedule.cron == "0 4 * * *" and schedule.next_run_at.minute == 0
    assert AuditEvent.objects.filter(action="schedule.update", user="boss", resource_id=str(schedule.pk)).exists()
