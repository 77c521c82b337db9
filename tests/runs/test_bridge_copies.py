"""Copies of a task (the executor sends the tasks of running steps again after the broker lost its
messages): the bridge calls the agent once per task, and sends a kept answer again."""

import asyncio

import pytest

from runs.recent import RecentAnswers
from tests.factories import AgentFactory
from tests.runs.test_bridge_limits import CountingAgent, process_all, recording_bridge, task_for


@pytest.mark.django_db(transaction=True)
def test_a_copy_that_comes_while_the_task_is_being_called_is_dropped(monkeypatch):
    with CountingAgent(delay=0.4) as agent:
        AgentFactory(name="slow", url=agent.url)
        bridge, published = recording_bridge(monkeypatch)
        task = task_for("slow", 0)
        asyncio.run(process_all(bridge, [task, dict(task)]))
    assert agent.calls == 1
    assert [m["task_id"] for _, _, m in published] == ["task-slow-0"]
    assert bridge.calling == set()
    assert bridge.tracker.committable()


@pytest.mark.django_db(transaction=True)
def test_a_copy_of_a_task_answered_already_gets_the_same_answer_without_a_call(monkeypatch):
    with CountingAgent(delay=0) as agent:
        AgentFactory(name="fast", url=agent.url)
        bridge, published = recording_bridge(monkeypatch)
        task = task_for("fast", 0)
        asyncio.run(process_all(bridge, [task]))
        asyncio.run(process_all(bridge, [dict(task)]))  # sent again: the first answer may have been lost
    assert agent.calls == 1
    (_, _, first), (_, _, again) = published
    assert again == first and first["status"] == "SUCCESS"


@pytest.mark.django_db(transaction=True)
def test_another_try_of_the_step_is_called(monkeypatch):
    with CountingAgent(delay=0) as agent:
        AgentFactory(name="fast", url=agent.url)
        bridge, published = recording_bridge(monkeypatch)
        asyncio.run(process_all(bridge, [task_for("fast", 0)]))
        asyncio.run(process_all(bridge, [task_for("fast", 1)]))  # a retry: its own correlation id
    assert agent.calls == 2 and len(published) == 2


def test_kept_answers_stay_within_their_bytes_oldest_out_first():
    recent = RecentAnswers(max_bytes=300)
    for n in range(10):
        recent.keep(f"corr-{n}", {"n": n, "output_data": {"text": "x" * 50}})
    assert recent.size <= 300
    assert recent.get("corr-9") is not None and recent.get("corr-0") is None
    recent.keep("huge", {"output_data": "y" * 1000})  # larger than all: not kept, the others stay
    assert recent.get("huge") is None and recent.get("corr-9") is not None
