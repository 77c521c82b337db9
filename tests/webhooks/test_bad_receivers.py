"""Receivers that hang, trickle, hang up, never listen or answer too much: every attempt is bounded
and recorded, the delivery retries, and the worker carries on with the others."""

import threading
import time
from collections import Counter

import pytest
from django.utils import timezone
from werkzeug.wrappers import Response

from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents
from tests.webhooks.conftest import endpoint, read_request, sweep_due
from webhooks.choices import DeliveryStatus
from webhooks.dispatch import _claim
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db


def one_event(deliver, workflow=None):
    with deliver():
        run_execute(workflow=workflow or workflow_with_agents("a"), input_data={"text": "x"}, user=None)


def test_a_hanging_receiver_times_out_and_others_are_not_held_up(httpserver, deliver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    release = threading.Event()

    def hang(request):
        release.wait(10)
        return Response("late")

    httpserver.expect_request("/hang").respond_with_handler(hang)
    httpserver.expect_request("/fine").respond_with_data("ok")
    hanging = endpoint(httpserver.url_for("/hang"), ["run.pending"])
    fine = endpoint(httpserver.url_for("/fine"), ["run.pending"])
    started = time.monotonic()
    try:
        one_event(deliver)
    finally:
        release.set()
    assert time.monotonic() - started < 3
    slow = Delivery.objects.get(endpoint=hanging)
    assert slow.status == DeliveryStatus.RETRYING and slow.last_error == "Timed out after 1s"
    attempt = slow.attempts.get()
    assert 900 <= attempt.duration_ms < 2500 and attempt.status_code is None
    assert Delivery.objects.get(endpoint=fine).status == DeliveryStatus.SUCCEEDED


def test_a_receiver_that_answers_a_byte_at_a_time_is_cut_off_at_the_deadline(raw_server, deliver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1

    def trickle(conn):
        read_request(conn)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
            conn.sendall(bytes([byte]))
            time.sleep(0.1)

    server = raw_server(trickle)
    endpoint(server.url, ["run.pending"])
    started = time.monotonic()
    one_event(deliver)
    assert time.monotonic() - started < 2.5  # each read waited less than the timeout, the whole no longer
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING and "Timed out" in delivery.last_error


def test_a_receiver_that_hangs_up_is_retried(raw_server, deliver):
    server = raw_server(read_request)  # reads the request, closes without a word
    endpoint(server.url, ["run.pending"])
    one_event(deliver)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert "RemoteProtocolError" in delivery.last_error and "disconnected" in delivery.last_error
    sweep_due()
    assert Delivery.objects.get().attempt_count == 2 and server.connections == 2


def test_nobody_listening_is_retried(deliver):
    endpoint("http://127.0.0.1:9/nobody", ["run.pending"])  # the discard port: nothing listens there
    one_event(deliver)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING and "ConnectError" in delivery.last_error


def test_a_huge_body_is_read_only_up_to_the_limit(httpserver, deliver, settings):
    settings.WEBHOOK_RESPONSE_LIMIT_BYTES = 1000
    finished = threading.Event()

    def endless():
        for _ in range(2000):  # 128 MB unless the reader stops
            yield b"x" * 65536
        finished.set()

    httpserver.expect_request("/huge").respond_with_handler(lambda request: Response(endless()))
    endpoint(httpserver.url_for("/huge"), ["run.pending"])
    one_event(deliver)
    attempt = Delivery.objects.get().attempts.get()
    assert attempt.status_code == 200 and attempt.response_body == "x" * 1000
    assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
    time.sleep(0.2)
    assert not finished.is_set()  # the rest was never read: the connection was dropped


def test_a_binary_body_is_kept_as_text(httpserver, deliver):
    httpserver.expect_request("/bin").respond_with_data(b"\x00\xff\xfebad\x00", status=500)
    endpoint(httpserver.url_for("/bin"), ["run.pending"])
    one_event(deliver)
    attempt = Delivery.objects.get().attempts.get()
    assert "bad" in attempt.response_body and "\x00" not in attempt.response_body


def test_a_500_forever_ends_failed_and_the_worker_moves_on(httpserver, deliver):
    httpserver.expect_request("/down").respond_with_data("down", status=500)
    httpserver.expect_request("/up").respond_with_data("ok")
    endpoint(httpserver.url_for("/down"), ["run.pending"])
    endpoint(httpserver.url_for("/up"), ["run.pending"])
    workflow = workflow_with_agents("a")
    for _ in range(3):
        one_event(deliver, workflow)
    for _ in range(10):
        sweep_due()
    statuses = Counter(Delivery.objects.values_list("endpoint__url", "status"))
    assert statuses == {(httpserver.url_for("/down"), "FAILED"): 3, (httpserver.url_for("/up"), "SUCCEEDED"): 3}


def test_claims_never_hand_out_the_same_delivery_twice(settings):
    settings.WEBHOOK_MAX_IN_FLIGHT = 8
    hook = endpoint("http://127.0.0.1:9/hook", ["*"])
    now = timezone.now()
    for _ in range(6):
        Delivery.objects.create(endpoint=hook, event_type="ping", payload={}, next_attempt_at=now)
    busy = Counter()
    assert len(_claim(10, busy)) == 4 and _claim(10, busy) == []  # half the threads per endpoint
    assert len(_claim(10, Counter())) == 2  # another worker takes the rest
    assert _claim(10, Counter()) == [] and Delivery.objects.filter(status=DeliveryStatus.SENDING).count() == 6
    Delivery.objects.update(next_attempt_at=now)  # the claims lapsed: their worker died
    assert len(_claim(10, Counter())) == 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_split_the_work():
    hook = endpoint("http://127.0.0.1:9/hook", ["*"])
    now = timezone.now()
    Delivery.objects.bulk_create(
        [Delivery(endpoint=hook, event_type="ping", payload={}, next_attempt_at=now) for _ in range(40)]
    )
    barrier, taken = threading.Barrier(4), []

    def claimer():
        from django.db import connection

        barrier.wait()
        try:
            for _ in range(10):
                taken.extend(d.pk for d in _claim(4, Counter()))
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == len(set(taken)) == 40
