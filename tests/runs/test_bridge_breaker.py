"""The circuit breaker in the bridge, against a real HTTP agent that fails until told otherwise: it
opens, later tasks wait for its half-open trial without holding a slot, and a successful trial closes it."""

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents import breaker
from agents.breaker_store import store
from tests.factories import AgentFactory
from tests.runs.test_bridge_limits import ANSWER, CountingAgent, process_all, recording_bridge, task_for

NO_RETRIES = {"max_retries": 0, "initial_delay_ms": 0, "max_delay_ms": 0, "backoff_multiplier": 1.0}


class FlakyAgent:
    """A real HTTP agent answering 503 while `failing`, else a result; it notes when each call came."""

    def __init__(self):
        self.failing = True
        self.calls: list[tuple[float, bool]] = []  # (time.time(), answered 503)
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # no agent card: the bridge speaks 0.3
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                failing = agent.failing
                agent.calls.append((time.time(), failing))
                body = b"down" if failing else json.dumps(ANSWER).encode()
                self.send_response(503 if failing else 200)
                self.send_header("Content-Type", "text/plain" if failing else "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(params=["redis", "database"])
def shared(request, settings):
    """Each store in turn: Redis (REDIS_URL) and the database (no REDIS_URL)."""
    if request.param == "redis" and not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    if request.param == "database":
        settings.REDIS_URL = None
    return request.param


def flaky_agent(url: str, **config):
    breaker_config = {"failure_threshold": 2, "timeout_seconds": 1, "half_open_max_calls": 1, **config}
    return AgentFactory(name="flaky", url=url, retry_config=NO_RETRIES, circuit_breaker_config=breaker_config)


def circuit_of(agent) -> dict:
    return store().read_many([str(agent.pk)])[str(agent.pk)]


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@pytest.mark.django_db(transaction=True)
def test_it_opens_then_tasks_wait_without_a_slot_for_the_trial_that_closes_it(settings, monkeypatch, shared):
    settings.BRIDGE_MAX_IN_FLIGHT = 1  # a waiting task holding the slot would stop the other agent
    with FlakyAgent() as flaky, CountingAgent(delay=0) as other:
        agent = flaky_agent(flaky.url)
        AgentFactory(name="other", url=other.url)
        bridge, published = recording_bridge(monkeypatch)
        seen = {}

        async def both():  # one event loop: the bridge's semaphore belongs to it
            await process_all(bridge, [task_for("flaky", 0), task_for("flaky", 1)])
            seen["first"] = [m for _, _, m in published]
            seen["circuit"] = await asyncio.to_thread(circuit_of, agent)
            flaky.failing = False  # recovered, but nobody calls it before its timeout
            published.clear()
            await process_all(bridge, [task_for("flaky", i) for i in range(2, 5)] + [task_for("other", 0)])
            await bridge.breakers.successes_write()  # as the bridge does on its way out

        asyncio.run(both())
    assert [m["status"] for m in seen["first"]] == ["FAILURE", "FAILURE"]
    assert "HTTP 503" in seen["first"][-1]["error_message"]
    circuit = seen["circuit"]
    assert circuit["state"] == breaker.OPEN and circuit["failures_total"] == 2
    assert len(flaky.calls) == 5  # two failures, then the trial and the two that waited for it
    trial_at, rest = flaky.calls[2][0], [at for at, _ in flaky.calls[3:]]
    assert trial_at >= circuit["retry_at"]  # not before the breaker's timeout
    statuses = {m["task_id"]: m["status"] for _, _, m in published}
    assert set(statuses.values()) == {"SUCCESS"} and len(statuses) == 4
    [(_, waiting, _)] = [item for item in published if item[2]["task_id"] == "task-other-0"]
    assert waiting == 3  # the other agent was called while the three waited
    assert all(at >= trial_at for at in rest)
    after = circuit_of(agent)
    assert after["state"] == breaker.CLOSED and (after["calls_total"], after["failures_total"]) == (5, 2)
    assert bridge.waiting == 0 and bridge.semaphore._value == 1
    assert bridge.tracker.committable()


@pytest.mark.django_db(transaction=True)
def test_a_task_whose_deadline_passes_while_the_breaker_is_open_fails_naming_it(monkeypatch):
    with FlakyAgent() as flaky:
        agent = flaky_agent(flaky.url, timeout_seconds=30)
        bridge, published = recording_bridge(monkeypatch)
        asyncio.run(process_all(bridge, [task_for("flaky", 0), task_for("flaky", 1)]))
        published.clear()
        started = time.monotonic()
        asyncio.run(process_all(bridge, [task_for("flaky", 2, deadline=soon(0.5))]))
    assert len(flaky.calls) == 2  # not called while open
    [(_, _, message)] = published
    assert message["status"] == "FAILURE"
    error = message["error_message"]
    assert error.startswith("Circuit breaker of agent 'flaky' is open since ")
    assert "the task's deadline passed while it waited" in error and "not called" in error
    assert 0.4 < time.monotonic() - started < 5  # at its deadline, not at the breaker's timeout
    assert circuit_of(agent)["state"] == breaker.OPEN


@pytest.mark.django_db(transaction=True)
def test_a_failed_trial_reopens_it_and_the_next_task_keeps_waiting(monkeypatch):
    with FlakyAgent() as flaky:
        agent = flaky_agent(flaky.url)
        bridge, published = recording_bridge(monkeypatch)
        asyncio.run(process_all(bridge, [task_for("flaky", 0), task_for("flaky", 1)]))
        published.clear()
        # Time for one trial (at 1 s), not for the next (at 2 s).
        tasks = [task_for("flaky", 2, deadline=soon(1.7)), task_for("flaky", 3, deadline=soon(1.7))]
        asyncio.run(process_all(bridge, tasks))
    assert len(flaky.calls) == 3  # one trial only (half_open_max_calls 1), and it failed
    by_task = {m["task_id"]: m["error_message"] for _, _, m in published}
    trial, waiter = sorted(by_task.items(), key=lambda item: "HTTP 503" not in item[1])
    assert "HTTP 503" in trial[1]
    assert waiter[1].startswith("Circuit breaker of agent 'flaky' is open since ")
    circuit = circuit_of(agent)
    assert circuit["state"] == breaker.OPEN and circuit["opened_total"] == 2


@pytest.mark.django_db(transaction=True)
def test_the_breakers_can_be_turned_off(settings, monkeypatch):
    settings.CIRCUIT_BREAKER_ENABLED = False
    with FlakyAgent() as flaky:
        agent = flaky_agent(flaky.url)
        bridge, published = recording_bridge(monkeypatch)
        asyncio.run(process_all(bridge, [task_for("flaky", i) for i in range(4)]))
    assert len(flaky.calls) == 4 and all("HTTP 503" in m["error_message"] for _, _, m in published)
    assert store().read_many([str(agent.pk)]) == {}


@pytest.mark.django_db(transaction=True)
def test_a_store_that_is_away_lets_calls_through(settings, monkeypatch):
    with CountingAgent(delay=0) as fine:
        AgentFactory(name="fine", url=fine.url)
        settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
        bridge, published = recording_bridge(monkeypatch)
        asyncio.run(process_all(bridge, [task_for("fine", 0)]))
    assert fine.calls == 1 and published[0][2]["status"] == "SUCCESS"
