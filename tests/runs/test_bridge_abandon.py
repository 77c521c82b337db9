"""A call whose step ends while the agent works on it (run cancelled, try timed out) is abandoned.

Before: the API marked the run and its steps CANCELLED, yet the bridge waited for the agent until it
answered or timed out, holding a call slot (and the offset), then published a result nobody wanted.
"""

import asyncio
import json
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from core.models import OutboxMessage
from runs.executor import Executor, overdue_handle
from runs.models import Run
from runs.services import run_cancel, run_execute
from tests.factories import AgentFactory
from tests.runs.helpers import chain
from tests.runs.test_bridge_limits import (  # noqa: F401 - fresh_protocol_cache is an autouse fixture
    PARTITION,
    CountingAgent,
    fresh_protocol_cache,
    process_all,
    recording_bridge,
)
from workflows.services import workflow_create

SLOW = 6.0  # seconds the agent takes: far more than abandoning may


def dispatched(agent_url: str) -> tuple[Run, dict]:
    """A run whose one step the executor has dispatched: the run and its agent task."""
    AgentFactory(name="slow", url=agent_url, timeout_ms=30_000)
    workflow = workflow_create(user=None, definition=chain("slow", name="abandon", s1={"timeout_seconds": 30}))
    run = run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
    request = OutboxMessage.objects.get(topic=settings.KAFKA_EXECUTION_TOPIC, key=str(run.id))
    sent = Executor().handle(settings.KAFKA_EXECUTION_TOPIC, json.dumps(request.payload).encode())
    [task] = [m.payload for m in sent if m.topic == settings.KAFKA_TASKS_TOPIC]
    return run, task


def while_called(agent: CountingAgent, end_the_step) -> tuple:
    """Runs `end_the_step` (in a thread) once the agent has the call; returns the coroutine for
    `process_all(during=...)` and a list that gets the time it ran."""
    ended: list[float] = []

    async def during():
        for _ in range(500):
            if agent.now:
                break
            await asyncio.sleep(0.01)
        assert agent.now == 1, "the agent never got the call"
        await asyncio.to_thread(end_the_step)
        ended.append(time.monotonic())

    return during, ended


def bridge_logs(client, run) -> list[dict]:
    body = client.get(f"/api/v1/runs/{run.id}/logs", {"page_size": 100}).json()
    return [entry for entry in body["items"] if entry["source"] == "bridge"]


@pytest.mark.django_db(transaction=True)
def test_cancelling_the_run_abandons_the_call_in_flight(settings, monkeypatch, viewer):
    settings.BRIDGE_MAX_IN_FLIGHT = 1  # the one slot must come back
    with CountingAgent(delay=SLOW) as agent:
        run, task = dispatched(agent.url)
        bridge, published = recording_bridge(monkeypatch)
        during, cancelled = while_called(agent, lambda: run_cancel(run=run, user=None, reason="wrong input"))
        asyncio.run(process_all(bridge, [task], during=during))
        done = time.monotonic()
    assert agent.calls == 1
    assert done - cancelled[0] < 2.5, done - cancelled[0]  # within about one check, not when the agent answers
    assert published == []  # the step no longer waits for a result
    assert not bridge.semaphore.locked() and bridge.abandon.calls == {}
    assert bridge.tracker.committable()[PARTITION].offset == 1
    [entry] = bridge_logs(viewer, run)
    assert entry["message"] == "Agent 'slow' call abandoned: step cancelled" and entry["step_id"] == "s1"
    assert entry["data"]["task_id"] == task["task_id"] and entry["data"]["waited_ms"] < SLOW * 1000
    messages = [e["message"] for e in viewer.get(f"/api/v1/runs/{run.id}/logs").json()["items"]]
    assert messages.index("Run cancelled: wrong input") < messages.index(entry["message"])


@pytest.mark.django_db(transaction=True)
def test_a_try_the_executor_timed_out_is_abandoned_too(monkeypatch, viewer):
    with CountingAgent(delay=SLOW) as agent:
        run, task = dispatched(agent.url)
        bridge, published = recording_bridge(monkeypatch)

        def time_out():
            run.steps.update(due_at=timezone.now() - timedelta(seconds=1))
            overdue_handle([])  # the executor's deadline pass: try 1 FAILED "Timed out ...", a retry scheduled

        during, timed_out = while_called(agent, time_out)
        asyncio.run(process_all(bridge, [task], during=during))
        done = time.monotonic()
    assert done - timed_out[0] < 2.5, done - timed_out[0]
    assert published == []
    assert bridge.tracker.committable()[PARTITION].offset == 1
    [entry] = bridge_logs(viewer, run)
    assert entry["message"] == "Agent 'slow' call abandoned: step timed out"


@pytest.mark.django_db(transaction=True)
def test_a_call_whose_step_still_waits_is_not_abandoned(settings, monkeypatch, viewer):
    settings.BRIDGE_ABANDON_CHECK_MS = 100  # checked several times while the agent works
    with CountingAgent(delay=0.6) as agent:
        run, task = dispatched(agent.url)
        bridge, published = recording_bridge(monkeypatch)
        asyncio.run(process_all(bridge, [task]))
    [(_, _, message)] = published
    assert message["status"] == "SUCCESS" and message["correlation_id"] == task["correlation_id"]
    assert bridge_logs(viewer, run) == []  # the call's entry goes with its result, for the executor to write
    assert message["call_log"]["message"].startswith("Agent 'slow' answered in ")
    assert bridge.abandon.calls == {} and bridge.abandon.watcher.done()
