"""Deliveries end to end with a real HTTP receiver: made from run and step events in their transaction,
sent by the (eager) Celery task after the commit, signed the Standard Webhooks way, in order per run."""

import json

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from runs.models import Event
from runs.services import run_cancel, run_execute, run_retry
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_executor import result, start, tasks
from tests.webhooks.conftest import endpoint, received, sweep_due
from webhooks.choices import DeliveryStatus
from webhooks.dispatch import deliveries_send_due
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db


def types(httpserver) -> list[str]:
    return [body["type"] for body in received(httpserver)]


def run_types(run) -> list[str]:
    return list(Event.objects.filter(run=run).values_list("type", flat=True))


def test_every_run_status_is_delivered_signed_and_in_order(httpserver, deliver):
    httpserver.expect_request("/all").respond_with_data("ok")
    hook = endpoint(httpserver.url_for("/all"))
    with deliver():
        done = run_execute(workflow=workflow_with_agents("a", "b", name="done"), input_data={"text": "x"}, user=None)
        [task] = tasks(start(done))
        [task2] = tasks(result(task, {"text": "y"}))
        result(task2, {"text": "z"})
        failed = run_execute(workflow=workflow_with_agents("c", name="fails"), input_data={"text": "x"}, user=None)
        [task] = tasks(start(failed))
        result(task, error="Agent returned HTTP 500")
        cancelled = run_execute(workflow=workflow_with_agents("d", name="stops"), input_data={"text": "x"}, user=None)
        start(cancelled)
        run_cancel(run=cancelled, user=None)
    bodies = received(httpserver, secret=hook.secret)  # every signature verifies
    for run in (done, failed, cancelled):  # runs are sent side by side; each one's events in order
        expected = json.loads(json.dumps([event.body() for event in Event.objects.filter(run=run)]))
        assert [body for body in bodies if body["data"]["run_id"] == str(run.id)] == expected
    assert {"run.pending", "run.running", "run.completed", "run.failed", "run.cancelled"} <= set(types(httpserver))
    assert "step.completed" in types(httpserver) and "step.cancelled" in types(httpserver)
    assert not Delivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists()
    first = str(Delivery.objects.get(event__type="run.pending", event__run=done).id)
    [request] = [request for request, _ in httpserver.log if request.headers["webhook-id"] == first]
    assert request.headers["content-type"] == "application/json"
    assert int(request.headers["webhook-timestamp"]) > 0
    assert request.headers["webhook-signature"].startswith("v1,")


def test_subscriptions_wildcards_and_the_workflow_filter(httpserver, deliver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    workflow = workflow_with_agents("a", name="mine")
    other = workflow_with_agents("b", name="other")
    url = httpserver.url_for("/hook")
    runs_only = endpoint(url, ["run.*"])
    completed = endpoint(url, ["run.completed", "step.running"], workflow_id=workflow.id)
    inactive = endpoint(url, ["*"], active=False)
    with deliver():
        for flow in (workflow, other):
            run = run_execute(workflow=flow, input_data={"text": "x"}, user=None)
            [task] = tasks(start(run))
            result(task, {"text": "y"})
    by = {
        hook: sorted(Delivery.objects.filter(endpoint=hook).values_list("event_type", flat=True))
        for hook in (runs_only, completed, inactive)
    }
    assert by[runs_only] == sorted(["run.pending", "run.running", "run.completed"] * 2)
    assert by[completed] == ["run.completed", "step.running"]
    assert by[inactive] == []


def test_deliveries_are_made_in_the_transaction_of_the_change(monkeypatch):
    endpoint("http://127.0.0.1:9/hook")
    workflow = workflow_with_agents("a")

    def broken(rows):
        raise RuntimeError("database full")

    monkeypatch.setattr(Delivery.objects, "bulk_create", broken)
    with pytest.raises(RuntimeError):
        run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
    monkeypatch.undo()
    assert not workflow.runs.exists() and not Event.objects.exists()  # no event without its deliveries


def test_a_run_keeps_its_order_while_an_earlier_delivery_retries(httpserver, deliver):
    httpserver.expect_oneshot_request("/order").respond_with_data("not now", status=503)
    httpserver.expect_request("/order").respond_with_data("ok")
    hook = endpoint(httpserver.url_for("/order"), ["run.*"])
    with deliver():
        first = run_execute(workflow=workflow_with_agents("a", name="first"), input_data={"text": "x"}, user=None)
    with deliver():
        start(first)  # run.running: waits behind the retrying run.pending
        second = run_execute(workflow=workflow_with_agents("b", name="second"), input_data={"text": "x"}, user=None)
    waiting = Delivery.objects.get(event__run=first, event_type="run.running")
    assert waiting.status == DeliveryStatus.PENDING and waiting.attempt_count == 0
    assert Delivery.objects.get(event__run=first, event_type="run.pending").status == DeliveryStatus.RETRYING
    assert Delivery.objects.get(event__run=second).status == DeliveryStatus.SUCCEEDED  # other runs do not wait
    sweep_due()
    got = [(body["type"], body["data"]["id"]) for body in received(httpserver, secret=hook.secret)]
    assert got == [
        ("run.pending", str(first.id)),
        ("run.pending", str(second.id)),
        ("run.pending", str(first.id)),
        ("run.running", str(first.id)),
    ]


def test_retry_follows_the_schedule_then_fails(httpserver, deliver):
    from webhooks.choices import RETRY_SCHEDULE

    httpserver.expect_request("/down").respond_with_data("down", status=500)
    endpoint(httpserver.url_for("/down"), ["run.pending"])
    with deliver():
        run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    delivery = Delivery.objects.get()
    for number in range(1, len(RETRY_SCHEDULE)):
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.RETRYING and delivery.attempt_count == number
        delay = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
        expected = RETRY_SCHEDULE[number]
        assert expected * 0.9 - 0.01 <= delay <= expected * 1.1 + 1, (number, delay)
        assert deliveries_send_due() == 0  # not due yet: nothing is sent
        sweep_due()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
    assert delivery.attempt_count == len(RETRY_SCHEDULE) == len(httpserver.log) == 10
    assert "gave up after 10 attempts" in delivery.last_error
    attempts = list(delivery.attempts.all())
    assert [a.number for a in attempts] == list(range(1, 11))
    assert all(a.status_code == 500 and a.response_body == "down" and a.error == "HTTP 500" for a in attempts)
    ids = {request.headers["webhook-id"] for request, _ in httpserver.log}
    assert ids == {str(delivery.id)}  # the same webhook-id on every attempt


def test_retry_after_may_lengthen_the_wait(httpserver, deliver):
    httpserver.expect_request("/busy").respond_with_data("slow down", status=429, headers={"Retry-After": "120"})
    endpoint(httpserver.url_for("/busy"), ["run.pending"])
    with deliver():
        run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds() >= 119


def test_jitter_spreads_the_delays():
    from webhooks.dispatch import retry_delay

    delays = {retry_delay(2) for _ in range(50)}
    assert len(delays) > 40 and all(270 <= d <= 330 for d in delays)
    assert retry_delay(1, retry_after=10**9) == 24 * 3600  # a Retry-After is capped at the longest delay


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_fail_at_once(httpserver, deliver, status):
    httpserver.expect_request("/no").respond_with_data("go away", status=status)
    endpoint(httpserver.url_for("/no"), ["run.pending"])
    with deliver():
        run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempt_count == 1
    assert delivery.last_status_code == status and "not retried" in delivery.last_error
    assert sweep_due() == 0


def test_410_disables_the_endpoint_and_fails_what_waits(httpserver, deliver):
    httpserver.expect_oneshot_request("/gone").respond_with_data("busy", status=503)
    httpserver.expect_request("/gone").respond_with_data("gone", status=410)
    hook = endpoint(httpserver.url_for("/gone"), ["run.*"])
    with deliver():  # two runs, sent side by side: one gets the 503, the other the 410
        first = run_execute(workflow=workflow_with_agents("a", name="a"), input_data={"text": "x"}, user=None)
        second = run_execute(workflow=workflow_with_agents("b", name="b"), input_data={"text": "x"}, user=None)
    sweep_due()
    assert Delivery.objects.filter(status=DeliveryStatus.FAILED, last_status_code=410).count() == 1
    assert Delivery.objects.filter(status=DeliveryStatus.FAILED).count() == 2  # the 503 one is not retried
    assert len(httpserver.log) == 2
    hook.refresh_from_db()
    assert not hook.active and "410 Gone" in hook.disabled_reason
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="webhook.disable", resource_id=str(hook.id)).exists()
    with deliver():
        start(first)
        start(second)
    assert not Delivery.objects.filter(event__type="run.running").exists()  # an inactive endpoint gets nothing


def test_a_retry_due_for_an_inactive_endpoint_fails_unsent(httpserver):
    hook = endpoint(httpserver.url_for("/x"), ["run.*"], active=False)
    delivery = Delivery.objects.create(
        endpoint=hook, event_type="run.failed", status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now()
    )
    sweep_due()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_error == "The webhook is inactive."
    assert not httpserver.log


def test_410_fails_the_pending_deliveries_of_the_endpoint(httpserver, deliver):
    httpserver.expect_request("/gone").respond_with_data("gone", status=410)
    hook = endpoint(httpserver.url_for("/gone"), ["run.*"])
    with deliver():
        run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
        start(run)
    statuses = dict(Delivery.objects.values_list("event_type", "status"))
    assert statuses == {"run.pending": DeliveryStatus.FAILED, "run.running": DeliveryStatus.FAILED}
    assert Delivery.objects.get(event_type="run.running").attempt_count == 0  # never sent
    hook.refresh_from_db()
    assert not hook.active


def test_redirects_are_not_followed(httpserver, deliver):
    httpserver.expect_request("/moved").respond_with_data("", status=302, headers={"Location": "/elsewhere"})
    httpserver.expect_request("/elsewhere").respond_with_data("ok")
    endpoint(httpserver.url_for("/moved"), ["run.pending"])
    with deliver():
        run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_status_code == 302
    assert "redirect to '/elsewhere' not followed" in delivery.last_error
    assert [request.path for request, _ in httpserver.log] == ["/moved"]


def test_redelivery_sends_again_with_the_same_webhook_id(httpserver, deliver, admin):
    httpserver.expect_request("/hook").respond_with_data("ok")
    hook = endpoint(httpserver.url_for("/hook"), ["run.pending"])
    with deliver():
        run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    delivery = Delivery.objects.get()
    with deliver():
        response = admin.post(f"/api/v1/webhooks/{hook.id}/deliveries/{delivery.id}/redeliver")
    assert response.status_code == 202 and response.json()["status"] == "PENDING"
    [(one, _), (two, _)] = httpserver.log
    assert one.headers["webhook-id"] == two.headers["webhook-id"] == str(delivery.id)
    assert one.get_data() == two.get_data()
    for request in (one, two):
        Webhook(hook.secret).verify(request.get_data(), dict(request.headers))
    listed = admin.get(f"/api/v1/webhooks/{hook.id}/deliveries").json()["items"]
    assert [a["number"] for a in listed[0]["attempts"]] == [1, 2] and listed[0]["status"] == "SUCCEEDED"


def test_rotation_signs_from_the_next_attempt_on(httpserver, deliver, admin):
    httpserver.expect_request("/hook").respond_with_data("ok")
    hook = endpoint(httpserver.url_for("/hook"), ["run.pending"])
    with deliver():
        run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    new_secret = admin.post(f"/api/v1/webhooks/{hook.id}/rotate-secret").json()["secret"]
    with deliver():
        admin.post(f"/api/v1/webhooks/{hook.id}/deliveries/{Delivery.objects.get().id}/redeliver")
    second = httpserver.log[1][0]
    Webhook(new_secret).verify(second.get_data(), dict(second.headers))
    with pytest.raises(Exception, match="signature"):
        Webhook(hook.secret).verify(second.get_data(), dict(second.headers))


def test_ping_goes_to_that_endpoint_only_and_is_not_retried(httpserver, deliver, admin):
    httpserver.expect_oneshot_request("/ping").respond_with_data("pong")
    httpserver.expect_request("/ping").respond_with_data("broken", status=500)
    httpserver.expect_request("/other").respond_with_data("ok")
    hook = endpoint(httpserver.url_for("/ping"), ["run.completed"], active=False)  # testing comes first
    endpoint(httpserver.url_for("/other"), ["*"])
    with deliver():
        response = admin.post(f"/api/v1/webhooks/{hook.id}/test")
    assert response.status_code == 202 and response.json()["event_type"] == "ping"
    [(request, _)] = httpserver.log
    assert request.path == "/ping"
    body = Webhook(hook.secret).verify(request.get_data(), dict(request.headers))
    assert body["type"] == "ping" and body["data"] == {"webhook_id": str(hook.id)} and body["timestamp"].endswith("Z")
    assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
    with deliver():
        admin.post(f"/api/v1/webhooks/{hook.id}/test")
    failed = Delivery.objects.get(status=DeliveryStatus.FAILED)
    assert failed.attempt_count == 1 and failed.next_attempt_at is None  # a test is answered once


def test_a_retry_and_cancel_of_the_run_are_delivered_too(httpserver, deliver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    endpoint(httpserver.url_for("/hook"), ["run.*"])
    with deliver():
        run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
        start(run)
        run_cancel(run=run, user=None)
        run_retry(run=run, user=None)
    assert types(httpserver) == ["run.pending", "run.running", "run.cancelled", "run.pending"]
    assert [b["data"]["attempt"] for b in received(httpserver)] == [1, 1, 1, 2]
    assert run_types(run)[-1] == "run.pending"
