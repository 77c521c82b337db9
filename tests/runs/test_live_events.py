"""Live events (`GET /runs/{id}/events`, `GET /events`) through a real ASGI server (uvicorn in a thread):
replay, live, reconnect with Last-Event-ID, keep-alives, the end after the terminal event, auth, bad ids."""

import socket
import threading
import time

import httpx
import pytest
import uvicorn
from django.db import connection, transaction

from config.asgi_gate import RequestGate
from config.asgi_handler import SyncChainASGIHandler
from core.roles import Role
from runs.models import Event
from runs.services import run_cancel, run_execute
from tests.conftest import make_user
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_executor import start

pytestmark = pytest.mark.django_db(transaction=True)  # the server's threads must see the test's rows


@pytest.fixture
def server(settings):
    settings.SSE_POLL_INTERVAL_MS = 20
    settings.SSE_GAP_WAIT_MS = 3000
    settings.WEB_MAX_ACTIVE_REQUESTS = 2  # open streams must not count against it
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = SyncChainASGIHandler()
    application = RequestGate(handler)  # as config/asgi.py serves it
    config = uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    config.timeout_graceful_shutdown = 1
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/api/v1"
    instance.should_exit = True
    thread.join(10)
    handler.threads_end()


@pytest.fixture
def key(client_for):
    return client_for(Role.VIEWER).raw_key


class Stream:
    """An open SSE response, read message by message (None once the server ended it)."""

    def __init__(self, url: str, headers: dict):
        self.client = httpx.Client(timeout=httpx.Timeout(10, read=5))
        self.response = self.client.send(self.client.build_request("GET", url, headers=headers), stream=True)
        self.lines = self.response.iter_lines()

    def message(self) -> dict | None:
        fields: dict = {}
        for line in self.lines:
            if line == "":
                if fields:
                    return fields
                continue
            name, _, value = line.partition(":")
            fields[name or "comment"] = value.removeprefix(" ")
        return None

    def events(self, count: int) -> list[dict]:
        found = []
        while len(found) < count:
            message = self.message()
            assert message is not None, f"the stream ended after {found}"
            if "comment" not in message:
                found.append(message)
        return found

    def close(self):
        self.response.close()
        self.client.close()


@pytest.fixture
def open_stream(server, key):
    opened = []

    def build(path: str, **headers) -> Stream:
        stream = Stream(server + path, {"X-API-Key": key, "Accept": "text/event-stream", **headers})
        opened.append(stream)
        return stream

    yield build
    for stream in opened:
        stream.close()


def table(run) -> list[tuple[str, str]]:
    return [(str(e.id), e.type) for e in Event.objects.filter(run=run)]


def seen(messages) -> list[tuple[str, str]]:
    return [(m["id"], m["event"]) for m in messages]


def started_run(name="live"):
    run = run_execute(workflow=workflow_with_agents(f"{name}-agent", name=name), input_data={"text": "x"}, user=None)
    start(run)  # run.running, step.running
    return run


def test_replay_then_live_then_the_end(open_stream):
    run = started_run()
    stream = open_stream(f"/runs/{run.id}/events")
    assert stream.response.status_code == 200
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    replayed = stream.events(3)
    assert seen(replayed) == table(run) and [m["event"] for m in replayed] == [
        "run.pending",
        "run.running",
        "step.running",
    ]
    assert '"status":"PENDING"' in replayed[0]["data"]
    sent = time.monotonic()
    run_cancel(run=run, user=None)
    live = stream.events(2)
    assert time.monotonic() - sent < 2
    assert seen(replayed + live) == table(run)
    assert [m["event"] for m in live] == ["step.cancelled", "run.cancelled"]
    assert stream.message() is None  # the run is over: so is the stream


def test_a_reconnect_with_last_event_id_misses_and_repeats_nothing(open_stream):
    run = started_run()
    first = open_stream(f"/runs/{run.id}/events")
    got = first.events(2)
    first.close()  # the client goes away; meanwhile more happens
    run_cancel(run=run, user=None)
    second = open_stream(f"/runs/{run.id}/events", **{"Last-Event-ID": got[-1]["id"]})
    got += second.events(3)
    assert second.message() is None
    assert seen(got) == table(run)  # each event once, in order
    # The query parameter does the same (the header wins when both are sent: EventSource keeps its URL).
    by_query = open_stream(f"/runs/{run.id}/events?last_event_id={got[2]['id']}")
    assert seen(by_query.events(2)) == table(run)[3:]
    both = open_stream(f"/runs/{run.id}/events?last_event_id=0", **{"Last-Event-ID": got[3]["id"]})
    assert seen(both.events(1)) == table(run)[4:]
    # After the terminal event: 200, nothing, the end.
    after_end = open_stream(f"/runs/{run.id}/events", **{"Last-Event-ID": got[-1]["id"]})
    assert after_end.response.status_code == 200
    assert after_end.message() == {"comment": "stream open"}
    assert after_end.message() is None


def test_all_events_start_now_with_filters_and_replay_after_an_id(open_stream):
    before = started_run("before")
    mark = Event.objects.order_by("id").last().id
    everything = open_stream("/events")
    cancelled_only = open_stream("/events?type=run.cancelled")
    one_workflow = open_stream(f"/events?workflow_id={before.workflow_id}")
    assert everything.message() == {"comment": "stream open"}
    started_run("other")  # run.pending, run.running, step.running
    run_cancel(run=before, user=None)  # step.cancelled, run.cancelled
    got = everything.events(5)
    assert seen(got) == [(str(e.id), e.type) for e in Event.objects.filter(id__gt=mark)]  # nothing from before
    assert seen(cancelled_only.events(1)) == [table(before)[-1]]
    assert seen(one_workflow.events(2)) == table(before)[-2:]  # none of the other workflow's
    replay = open_stream("/events", **{"Last-Event-ID": got[0]["id"]})
    assert seen(replay.events(4)) == seen(got[1:])


def test_keep_alive_comments_while_idle(open_stream, settings):
    settings.SSE_KEEPALIVE_SECONDS = 1
    stream = open_stream("/events")
    assert stream.message() == {"comment": "stream open"}
    started = time.monotonic()
    assert stream.message() == {"comment": "keep-alive"}
    assert 0.8 < time.monotonic() - started < 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite commits one writer at a time")
def test_an_event_committed_after_a_later_id_is_not_lost(open_stream):
    run = started_run()
    stream = open_stream(f"/runs/{run.id}/events")
    stream.events(3)
    holding, release = threading.Event(), threading.Event()

    def slow_writer():  # takes an id, then commits only after a later event has been committed
        with transaction.atomic():
            Event.objects.create(type="run.paused", run=run, workflow_id=run.workflow_id, data={"n": 1})
            holding.set()
            release.wait(5)
        connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    holding.wait(5)
    Event.objects.create(type="run.resumed", run=run, workflow_id=run.workflow_id, data={"n": 2})
    time.sleep(0.3)  # several polls see the later id alone
    release.set()
    writer.join()
    assert seen(stream.events(2)) == table(run)[3:]  # both, in id order


def session(client, username, role) -> dict:
    client.force_login(make_user(username, role))
    return {"sessionid": client.cookies["sessionid"].value}


def test_the_stream_answers_errors_like_the_api_before_it_starts(server, client, key):
    run = started_run()
    url = f"{server}/runs/{run.id}/events"
    assert httpx.get(url).status_code == 401
    denied = httpx.get(url, cookies=session(client, "nobody", None))  # signed in, but no role
    assert denied.status_code == 403 and denied.json()["error"] == "permission_denied"
    headers = {"X-API-Key": key, "Accept": "text/event-stream"}
    missing = httpx.get(f"{server}/runs/00000000-0000-4000-8000-00000000dead/events", headers=headers)
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    bad = httpx.get(url + "?last_event_id=abc", headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "last_event_id"
    future = httpx.get(url, headers={**headers, "Last-Event-ID": "999999999"})
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "Last-Event-ID"
    assert "does not exist yet" in future.json()["errors"][0]["message"]
    filters = httpx.get(f"{server}/events?workflow_id=nope&type=run.exploded", headers=headers)
    assert filters.status_code == 422
    assert {e["field"] for e in filters.json()["errors"]} == {"workflow_id", "type"}


def test_a_session_user_with_the_viewer_role_may_stream(server, client):
    run = started_run()
    run_cancel(run=run, user=None)
    cookies = session(client, "watcher", Role.VIEWER)
    with httpx.stream("GET", f"{server}/runs/{run.id}/events", cookies=cookies, timeout=5) as answer:
        assert answer.status_code == 200
        body = "".join(answer.iter_text())
    assert body.count("\nevent: ") == len(table(run))  # every event, then the end


def database_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="counts PostgreSQL sessions")
def test_idle_streams_hold_no_thread_and_no_database_connection(open_stream):
    streams = [open_stream("/events") for _ in range(3)]  # the poller and the default executor start
    for stream in streams:
        stream.message()
    time.sleep(0.5)
    threads, sessions = threading.active_count(), database_sessions()
    streams = [open_stream("/events") for _ in range(30)]
    for stream in streams:
        assert stream.message() == {"comment": "stream open"}
    time.sleep(0.5)  # the requests' threads end once their streams have started
    assert threading.active_count() - threads <= 3
    assert database_sessions() - sessions <= 3
    run = started_run()  # and they all still get what happens
    for stream in streams:
        assert seen(stream.events(3)) == table(run)
