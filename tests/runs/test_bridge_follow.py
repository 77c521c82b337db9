"""The bridge follows agents' unfinished A2A tasks without holding call slots, resumes them from the
step after a restart, cancels them when their step ends, and asks a person when the agent needs input."""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from agents.a2a import message_id_of
from agents.agent_http import AgentClient
from core.models import OutboxMessage
from runs.bridge import Bridge
from runs.executor import Executor, overdue_handle
from runs.models import Run, RunLog, StepExecution
from runs.services import run_cancel, run_execute
from tests.agents.task_agent import TaskAgent
from tests.factories import AgentFactory
from tests.runs.helpers import chain
from tests.runs.test_bridge_limits import (  # noqa: F401 - fresh_protocol_cache is an autouse fixture
    PARTITION,
    CountingAgent,
    FakeConsumer,
    fresh_protocol_cache,
    process_all,
    recording_bridge,
    task_for,
)
from workflows.services import workflow_create


@pytest.fixture(autouse=True)
def quick(settings):
    settings.A2A_POLL_INITIAL_MS, settings.A2A_POLL_MAX_MS = 20, 100
    settings.BRIDGE_ABANDON_CHECK_MS = 100


def dispatched(agent_url: str) -> tuple[Run, dict]:
    """A run whose one step (agent 'thinker') the executor has dispatched: the run and its agent task."""
    AgentFactory(name="thinker", url=agent_url, timeout_ms=30_000)
    workflow = workflow_create(user=None, definition=chain("thinker", name="follow", s1={"timeout_seconds": 30}))
    run = run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
    request = OutboxMessage.objects.get(topic=settings.KAFKA_EXECUTION_TOPIC, key=str(run.id))
    sent = Executor().handle(settings.KAFKA_EXECUTION_TOPIC, json.dumps(request.payload).encode())
    [task] = [m.payload for m in sent if m.topic == settings.KAFKA_TASKS_TOPIC]
    return run, task


def step_of(task: dict) -> StepExecution:
    return StepExecution.objects.get(correlation_id=task["correlation_id"])


def bridge_messages(run, published=()) -> list[str]:
    """The bridge's log entries of the run: those it wrote, then those it sent with its results (the
    executor writes them with the result; here no executor takes them)."""
    written = RunLog.objects.filter(run=run, source="bridge").order_by("timestamp").values_list("message", flat=True)
    return [*written, *(m["call_log"]["message"] for _, _, m in published if "call_log" in m)]


def cancel_messages(run) -> list[dict]:
    rows = OutboxMessage.objects.filter(topic=settings.KAFKA_TASKS_TOPIC, key=str(run.id))
    return [m.payload for m in rows if m.payload.get("message_type") == "agent_task_cancel"]


def assert_nothing_left(bridge: Bridge, offsets: int) -> None:
    assert bridge.followers.count == 0 and bridge.followers.places._value == settings.BRIDGE_MAX_FOLLOWING
    assert bridge.abandon.calls == {} and bridge.calling == set()
    assert not bridge.semaphore.locked() and bridge.gates.gates == {}
    assert bridge.tracker.committable()[PARTITION].offset == offsets


@pytest.mark.django_db(transaction=True)
def test_a_followed_task_gives_its_slot_up_and_completes(settings, monkeypatch):
    settings.BRIDGE_MAX_IN_FLIGHT = 1  # the fast agent's task gets through only if the slot came back
    seen = {}
    with TaskAgent(protocol="1.0", work=1.0) as thinker, CountingAgent(delay=0) as fast:
        run, task = dispatched(thinker.url)
        AgentFactory(name="fast", url=fast.url)
        bridge, published = recording_bridge(monkeypatch)

        async def during():
            for _ in range(200):
                if published:
                    break
                await asyncio.sleep(0.02)
            seen.update(following=bridge.followers.count, slot_free=not bridge.semaphore.locked())
            seen["stored"] = await asyncio.to_thread(lambda: step_of(task).agent_task_id)

        asyncio.run(process_all(bridge, [task, task_for("fast", 0)], during=during))
    assert [m["task_id"] for _, _, m in published] == ["task-fast-0", task["task_id"]]
    _, _, result = published[1]
    assert seen == {"following": 1, "slot_free": True, "stored": result["agent_task_id"]}
    assert result["status"] == "SUCCESS" and result["output_data"]["answer"] == 42
    assert result["agent_task_id"] == next(iter(thinker.tasks))
    assert result["agent_context_id"] == f"ctx-{result['agent_task_id']}"
    assert len(thinker.sent) == 1 and thinker.cancels == []
    message_id = thinker.sent[0]["params"]["message"]["messageId"]
    step = step_of(task)
    assert step.agent_task_id == result["agent_task_id"] and step.agent_context_id == result["agent_context_id"]
    logs = bridge_messages(run, published)
    assert logs[0] == f"Agent 'thinker' answered with task '{step.agent_task_id}' (working); following it (polling)"
    assert logs[-1].startswith("Agent 'thinker' answered in ")
    assert_nothing_left(bridge, 2)
    # Derived from the try: the same try sent again carries the same messageId.
    assert message_id == message_id_of(task["run_id"], task["correlation_id"], task["task_id"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("source", ["step", "task"])
def test_a_restarted_bridge_resumes_following_without_calling_again(monkeypatch, source):
    with TaskAgent(protocol="0.3", streams=True, work=0.3) as thinker:
        run, task = dispatched(thinker.url)
        thinker.tasks["agent-task-old"] = {
            "context": "ctx-old",
            "state": "working",
            "done_at": time.monotonic() + 0.3,
            "answer": {"answer": 7},
        }
        if source == "step":  # stored by the bridge that was killed while following
            StepExecution.objects.filter(pk=step_of(task).pk).update(
                agent_task_id="agent-task-old", agent_context_id="ctx-old"
            )
        else:  # the executor sent the task again with the step's agent task
            task = {**task, "agent_task_id": "agent-task-old", "agent_context_id": "ctx-old"}
        bridge, published = recording_bridge(monkeypatch)
        asyncio.run(process_all(bridge, [task]))
    assert thinker.sent == []  # no second call
    [(_, _, result)] = published
    assert result["status"] == "SUCCESS" and result["output_data"]["answer"] == 7
    assert result["agent_task_id"] == "agent-task-old"
    assert bridge_messages(run)[0] == "Agent 'thinker' resumed following (streaming)"
    assert_nothing_left(bridge, 1)


@pytest.mark.django_db(transaction=True)
def test_cancelling_the_run_stops_following_and_cancels_the_agents_task(monkeypatch):
    with TaskAgent(protocol="1.0", work=None) as thinker:
        run, task = dispatched(thinker.url)
        bridge, published = recording_bridge(monkeypatch)

        async def cancel_while_followed():
            for _ in range(300):
                if thinker.polls:
                    break
                await asyncio.sleep(0.02)
            await asyncio.to_thread(run_cancel, run=run, user=None, reason="no longer needed")

        asyncio.run(process_all(bridge, [task], during=cancel_while_followed))
        [agent_task_id] = thinker.tasks
        assert [c["params"]["id"] for c in thinker.cancels] == [agent_task_id]
        assert thinker.tasks[agent_task_id]["state"] == "canceled"
        # The executor side asked for it as well (what reaches agents followed by another bridge):
        [cancel] = cancel_messages(run)
        assert cancel["agent_task_id"] == agent_task_id and cancel["correlation_id"] == task["correlation_id"]
        assert cancel["reason"] == "Run cancelled" and cancel["agent_name"] == "thinker"
        # This bridge cancelled it already: the message sends nothing twice, and publishes nothing.
        bridge.tracker.add(PARTITION, 1)
        asyncio.run(_one(bridge, cancel, 1))
        assert len(thinker.cancels) == 1
        # Another bridge (the one that was not following it) does send it.
        other, other_published = recording_bridge(monkeypatch)
        other.tracker.add(PARTITION, 0)
        asyncio.run(_one(other, cancel, 0))
        assert len(thinker.cancels) == 2 and other_published == []
    assert published == []
    logs = bridge_messages(run, published)
    assert "Agent 'thinker' call abandoned: step cancelled" in logs
    assert f"Agent 'thinker' task '{agent_task_id}' cancelled (step no longer running)" in logs
    assert f"Agent 'thinker' task '{agent_task_id}' cancelled (Run cancelled)" in logs
    assert_nothing_left(bridge, 2)


async def _one(bridge: Bridge, task: dict, offset: int) -> None:
    async with AgentClient() as client:
        await bridge.process(client, PARTITION, offset, task)


@pytest.mark.django_db(transaction=True)
def test_a_task_still_working_at_the_deadline_fails_naming_its_state_and_is_cancelled(monkeypatch):
    with TaskAgent(protocol="0.3", work=None) as thinker:
        run, task = dispatched(thinker.url)
        task = {**task, "deadline": (datetime.now(UTC) + timedelta(seconds=0.8)).isoformat()}
        bridge, published = recording_bridge(monkeypatch)
        asyncio.run(process_all(bridge, [task]))
        [agent_task_id] = thinker.tasks
        assert len(thinker.cancels) == 1
    [(at, _, result)] = published
    assert result["status"] == "FAILURE" and at < 2
    assert f"Agent task '{agent_task_id}' was still 'working' at the step's deadline" in result["error_message"]
    assert result["agent_task_id"] == agent_task_id
    logs = bridge_messages(run, published)
    assert any(m.startswith("Agent 'thinker' call failed: Agent task") for m in logs)
    assert any(m.startswith(f"Agent 'thinker' task '{agent_task_id}' cancelled (Agent task") for m in logs)
    assert_nothing_left(bridge, 1)


@pytest.mark.django_db(transaction=True)
def test_an_agent_that_loses_its_task_fails_the_step_at_once(monkeypatch):
    with TaskAgent(protocol="1.0", work=5, bad="unknown-task") as thinker:
        run, task = dispatched(thinker.url)
        bridge, published = recording_bridge(monkeypatch)
        asyncio.run(process_all(bridge, [task]))
    [(at, _, result)] = published
    assert result["status"] == "FAILURE" and "Task not found" in result["error_message"] and at < 3
    assert_nothing_left(bridge, 1)


@pytest.mark.django_db(transaction=True)
def test_input_required_is_reported_and_the_reply_continues_the_same_task(monkeypatch):
    with TaskAgent(protocol="1.0", asks="Which colour?", work=0.2) as agent:
        run, task = dispatched(agent.url)
        bridge, published = recording_bridge(monkeypatch)
        asyncio.run(process_all(bridge, [task]))
        [(_, _, asked)] = published
        assert asked["status"] == "INPUT_REQUIRED" and asked["error_message"] is None
        assert asked["output_data"] == {
            "state": "input-required",
            "message": "Which colour?",
            "data": {"field": "name"},
        }
        [agent_task_id] = agent.tasks
        assert asked["agent_task_id"] == agent_task_id and asked["agent_context_id"] == f"ctx-{agent_task_id}"
        # The person's answer: a new task id, the same correlation id (not a copy of the first).
        reply = {
            **task,
            "task_id": "task-s1-reply",
            "reply": {"text": "blue", "data": None},
            "agent_task_id": agent_task_id,
            "agent_context_id": asked["agent_context_id"],
        }
        bridge.tracker.add(PARTITION, 1)
        asyncio.run(_one(bridge, reply, 1))
        first, second = agent.sent
    message = second["params"]["message"]
    assert message["taskId"] == agent_task_id and message["parts"] == [{"text": "blue"}]
    assert message["messageId"] != first["params"]["message"]["messageId"]
    _, _, done = published[1]
    assert done["task_id"] == "task-s1-reply" and done["status"] == "SUCCESS"
    assert done["output_data"]["reply"] == ["blue"]
    assert "Agent 'thinker' asks for input (input-required)" in bridge_messages(run, published)
    assert_nothing_left(bridge, 2)


@pytest.mark.django_db(transaction=True)
def test_a_step_timing_out_with_an_open_agent_task_asks_the_bridge_to_cancel_it():
    run, task = dispatched("http://127.0.0.1:1/")
    StepExecution.objects.filter(correlation_id=task["correlation_id"]).update(
        agent_task_id="agent-task-9", agent_context_id="ctx-9", due_at=timezone.now() - timedelta(seconds=1)
    )
    overdue_handle([])
    [cancel] = cancel_messages(run)
    assert cancel["agent_task_id"] == "agent-task-9" and cancel["agent_context_id"] == "ctx-9"
    assert cancel["reason"] == "step timed out" and cancel["step_id"] == "s1"


def test_followed_tasks_do_not_take_the_consumers_room_but_are_bounded(settings):
    settings.BRIDGE_MAX_IN_FLIGHT, settings.BRIDGE_MAX_WAITING, settings.BRIDGE_MAX_FOLLOWING = 4, 0, 3
    bridge, consumer = Bridge(), FakeConsumer()
    bridge.consumer = consumer
    for offset in range(4):
        bridge.tracker.add(PARTITION, offset)
    bridge.followers.count = 2  # two of the four are followed
    bridge.poll()
    assert not consumer.paused_now and consumer.batches[-1] == 2
    bridge.followers.count = 50
    bridge.poll()
    assert consumer.batches[-1] == 3  # at most BRIDGE_MAX_FOLLOWING on top
    for offset in range(4, 7):
        bridge.tracker.add(PARTITION, offset)
    bridge.poll()
    assert consumer.paused_now
