"""Following an agent's unfinished task: polling, streaming, input, cancel, bad agents (both protocols)."""

import asyncio
import time

import pytest

from agents import a2a
from agents.a2a import AgentCall, Message, call_agent, message_id_of
from agents.a2a_tasks import TaskRef, cancel_task, follow_task
from agents.agent_http import AgentClient
from tests.agents.task_agent import TaskAgent

BOTH = pytest.mark.parametrize("protocol", ["0.3", "1.0"])


@pytest.fixture(autouse=True)
def fast_polls(settings):
    settings.A2A_POLL_INITIAL_MS, settings.A2A_POLL_MAX_MS = 20, 100
    a2a.clear_protocol_cache()
    yield
    a2a.clear_protocol_cache()


async def start(agent: TaskAgent, client, message=None) -> a2a.CallResult:
    call = AgentCall(url=agent.url, headers={}, timeout_ms=5000)
    return await call_agent(client, call, {"text": "go"}, correlation_id="corr-1", task_id="task-1", message=message)


def ref_of(agent: TaskAgent, result: a2a.CallResult) -> TaskRef:
    return TaskRef(agent.url, {}, result.protocol, result.agent_task_id, result.agent_context_id)


def started_and_followed(agent: TaskAgent, seconds: float = 5.0):
    async def go():
        async with AgentClient() as client:
            first = await start(agent, client)
            assert first.open and first.state == "working" and first.output is None, first
            followed = await follow_task(
                client, ref_of(agent, first), seconds=seconds, streams=a2a.card_streams(agent.url), state=first.state
            )
            return first, followed

    return asyncio.run(go())


@BOTH
def test_a_working_task_is_polled_until_it_completes(protocol):
    with TaskAgent(protocol=protocol, work=0.4) as agent:
        first, done = started_and_followed(agent)
    assert first.protocol == protocol and first.agent_task_id.startswith("agent-task-")
    assert first.agent_context_id == f"ctx-{first.agent_task_id}"
    assert done.ok and done.state == "completed", done
    assert done.output["answer"] == 42 and done.output["task_id"] == first.agent_task_id
    assert 2 <= len(agent.polls) <= 12  # backoff: 20, 40, 80, 100, 100 ... ms
    assert all(p["params"] == {"id": first.agent_task_id} for p in agent.polls)
    if protocol == "1.0":
        assert agent.polls[0]["method"] == "GetTask" and agent.polls[0]["_headers"]["A2A-Version"] == "1.0"
    else:
        assert agent.polls[0]["method"] == "tasks/get"
    assert agent.subscribes == []


@BOTH
def test_a_streaming_agent_is_subscribed_to_not_polled(protocol):
    with TaskAgent(protocol=protocol, streams=True, work=0.5) as agent:
        first, done = started_and_followed(agent)
    assert done.ok and done.output["answer"] == 42, done
    [subscribe] = agent.subscribes
    assert subscribe["method"] == ("SubscribeToTask" if protocol == "1.0" else "tasks/resubscribe")
    assert subscribe["_headers"]["Accept"] == "text/event-stream"
    assert len(agent.polls) == 1  # once, at the end: the whole task with its artifacts


@pytest.mark.parametrize("bad", ["garbage-stream", "drops-stream"])
def test_a_broken_stream_falls_back_to_polling(bad):
    with TaskAgent(protocol="1.0", streams=True, work=0.4, bad=bad) as agent:
        _, done = started_and_followed(agent)
    assert done.ok and done.output["answer"] == 42, done
    assert len(agent.subscribes) == 1 and len(agent.polls) >= 2


@BOTH
def test_a_task_that_never_finishes_fails_at_the_deadline_naming_its_state(protocol):
    with TaskAgent(protocol=protocol, work=None) as agent:
        started = time.monotonic()
        _, done = started_and_followed(agent, seconds=0.5)
        took = time.monotonic() - started
    assert not done.ok and done.state == "working"
    assert done.error.startswith("Agent task 'agent-task-") and "still 'working' at the step's deadline (500 ms)" in (
        done.error
    )
    assert took < 1.5


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("changes-id", "Agent changed its task id midway (from 'agent-task-"),
        ("unknown-task", "JSON-RPC error -32001: Task not found"),
    ],
)
def test_bad_agents_fail_the_follow_clearly(bad, error):
    with TaskAgent(protocol="0.3", work=5, bad=bad) as agent:
        started = time.monotonic()
        _, done = started_and_followed(agent)
    assert not done.ok and error in done.error, done.error
    assert time.monotonic() - started < 2  # at once, not at the deadline


def test_server_errors_while_polling_are_tried_again_until_the_deadline():
    with TaskAgent(protocol="1.0", work=5, bad="get-500") as agent:
        _, done = started_and_followed(agent, seconds=0.5)
    assert not done.ok and "still 'working'" in done.error
    assert "last error: GetTask failed: Agent returned HTTP 500" in done.error
    assert len(agent.polls) >= 3


@BOTH
def test_input_required_then_the_reply_goes_to_the_same_task_and_context(protocol):
    async def go(agent):
        async with AgentClient() as client:
            asked = await start(agent, client)
            reply = Message(
                message_id="reply-1",
                reply={"text": "Ada", "data": {"age": 36}},
                agent_task_id=asked.agent_task_id,
                agent_context_id=asked.agent_context_id,
            )
            again = await start(agent, client, message=reply)
            done = await follow_task(client, ref_of(agent, again), seconds=5, streams=False, state=again.state)
            return asked, again, done

    with TaskAgent(protocol=protocol, asks="What is your name?", work=0.2) as agent:
        asked, again, done = asyncio.run(go(agent))
        first, second = agent.sent
    assert asked.needs_input and asked.state == "input-required"
    assert asked.output == {"state": "input-required", "message": "What is your name?", "data": {"field": "name"}}
    assert again.open and again.agent_task_id == asked.agent_task_id
    message = second["params"]["message"]
    assert message["taskId"] == asked.agent_task_id and message["contextId"] == asked.agent_context_id
    assert message["messageId"] == "reply-1"
    texts = [p.get("text") for p in message["parts"] if "text" in p]
    assert texts == ["Ada"] and [p["data"] for p in message["parts"] if "data" in p] == [{"age": 36}]
    assert "taskId" not in first["params"]["message"]
    assert done.ok and done.output["reply"] == ["Ada", {"age": 36}]


def test_the_message_id_is_the_same_for_the_same_try_and_new_for_a_retry_or_a_reply():
    same = message_id_of("run-1", "corr-a", "task-a")
    assert same == message_id_of("run-1", "corr-a", "task-a")
    assert same != message_id_of("run-1", "corr-b", "task-a")  # a retry: a new correlation id
    assert same != message_id_of("run-1", "corr-a", "task-b")  # a reply: a new task id

    async def go(agent):
        async with AgentClient() as client:
            await start(agent, client, message=Message(message_id=same))
            await start(agent, client, message=Message(message_id=same))

    with TaskAgent(protocol="1.0", work=0) as agent:
        asyncio.run(go(agent))
    assert [r["params"]["message"]["messageId"] for r in agent.sent] == [same, same]


@BOTH
def test_cancel_task_reaches_the_agent(protocol):
    async def go(agent):
        async with AgentClient() as client:
            first = await start(agent, client)
            error = await cancel_task(client, ref_of(agent, first))
            gone = await cancel_task(client, TaskRef(agent.url, {}, protocol, "no-such-task"))
            return first, error, gone

    with TaskAgent(protocol=protocol, work=None) as agent:
        first, error, gone = asyncio.run(go(agent))
        [cancel] = [c for c in agent.cancels if c["params"]["id"] == first.agent_task_id]
        assert agent.tasks[first.agent_task_id]["state"] == "canceled"
    assert error is None
    assert cancel["method"] == ("CancelTask" if protocol == "1.0" else "tasks/cancel")
    assert "Task not found" in gone
