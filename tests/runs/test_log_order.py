"""`GET /runs/{id}/logs` lists what the API, the executor and the bridge did in the order it happened.

Before: the bridge wrote its "Agent answered" entry after publishing the result, so an executor that
took the result at once logged "Step completed" (and the next dispatch) before it; and each entry's
timestamp was the time it was saved, not the time of what it tells.
"""

import asyncio
import json
from datetime import datetime

import pytest
from django.conf import settings
from kafka.structs import TopicPartition

from agents.agent_http import AgentClient
from core.models import OutboxMessage
from runs.bridge import Bridge
from runs.executor import Executor
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_bridge_limits import CountingAgent, fresh_protocol_cache  # noqa: F401 - an autouse fixture

PARTITION = TopicPartition("tasks", 0)


def tasks_in(sent) -> list[dict]:
    return [m.payload for m in sent if m.topic == settings.KAFKA_TASKS_TOPIC]


def drive(run, executor: Executor) -> None:
    """The executor and a bridge, the bridge's results handed to the executor the moment they are out
    (as a quick executor takes them from Kafka), until no task is left."""
    request = OutboxMessage.objects.get(topic=settings.KAFKA_EXECUTION_TOPIC, key=str(run.id))
    queue = tasks_in(executor.handle(settings.KAFKA_EXECUTION_TOPIC, json.dumps(request.payload).encode()))
    bridge = Bridge()

    async def publish(message):
        sent = await asyncio.to_thread(executor.handle, settings.KAFKA_RESULTS_TOPIC, json.dumps(message).encode())
        queue.extend(tasks_in(sent))

    bridge.publish = publish

    async def go():
        async with AgentClient() as client:
            offset = 0
            while queue:
                bridge.tracker.add(PARTITION, offset)
                await bridge.process(client, PARTITION, offset, queue.pop(0))
                offset += 1

    asyncio.run(go())


def when(entry: dict) -> datetime:
    return datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))


@pytest.mark.django_db(transaction=True)
def test_entries_of_the_api_the_executor_and_the_bridge_come_in_time_order(viewer):
    with CountingAgent(delay=0.02) as agent:
        run = run_execute(
            workflow=workflow_with_agents(
                "upper", "count", url=agent.url, s2={"input_mapping": {"ok": "${s1.output.ok}"}}
            ),
            input_data={"text": "a b"},
            user=None,
        )
        drive(run, Executor())
    body = viewer.get(f"/api/v1/runs/{run.id}/logs", {"page_size": 100}).json()
    entries = [(entry["source"], entry["step_id"], entry["message"].split(" in ")[0]) for entry in body["items"]]
    assert entries == [
        ("api", None, "Run created from 'chain' version 1"),
        ("executor", None, "Run running"),
        ("executor", "s1", "Step 's1' dispatched to agent 'upper'"),
        ("bridge", "s1", "Agent 'upper' answered"),
        ("executor", "s1", "Step 's1' completed"),
        ("executor", "s2", "Step 's2' dispatched to agent 'count'"),
        ("bridge", "s2", "Agent 'count' answered"),
        ("executor", "s2", "Step 's2' completed"),
        ("executor", None, "Run completed"),
    ], entries
    stamps = [when(entry) for entry in body["items"]]
    assert stamps == sorted(stamps)
    # The bridge's entry says when the answer came: before the executor recorded it.
    answered, completed = body["items"][3], body["items"][4]
    assert when(answered) <= when(completed)
    assert answered["data"]["duration_ms"] >= 20  # the agent's own call time is kept there
