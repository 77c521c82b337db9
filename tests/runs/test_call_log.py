"""The bridge's log entry of a call goes with the call's result, and the executor writes it in the
transaction that records the result: one database write fewer per call in the bridge, and never an
entry without its result or a result without its entry. A copy sent again carries no entry."""

import asyncio
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from runs.executor import Executor
from runs.models import RunLog
from tests.runs.test_bridge_abandon import dispatched
from tests.runs.test_bridge_limits import (  # noqa: F401 - fresh_protocol_cache is an autouse fixture
    CountingAgent,
    fresh_protocol_cache,
    process_all,
    recording_bridge,
)

pytestmark = pytest.mark.django_db(transaction=True)


def handled(message: dict) -> list:
    return Executor().handle(settings.KAFKA_RESULTS_TOPIC, json.dumps(message).encode())


def entries(run) -> list[tuple[str, str]]:
    return list(RunLog.objects.filter(run=run).order_by("timestamp", "id").values_list("source", "message"))


def test_the_call_log_comes_with_the_result_and_is_written_once(monkeypatch):
    with CountingAgent(delay=0) as agent:
        run, task = dispatched(agent.url)
        bridge, published = recording_bridge(monkeypatch)
        asyncio.run(process_all(bridge, [task]))
        asyncio.run(process_all(bridge, [dict(task)]))  # a copy: the kept answer goes out again
    assert agent.calls == 1
    (_, _, first), (_, _, again) = published
    entry = first["call_log"]
    assert entry["message"].startswith("Agent 'slow' answered in ") and entry["level"] == "info"
    assert entry["data"]["task_id"] == task["task_id"] and entry["data"]["url"] == agent.url
    assert entry["data"]["attempts"] == 1 and entry["data"]["duration_ms"] == first["duration_ms"]
    assert "call_log" not in again and again == {k: v for k, v in first.items() if k != "call_log"}
    assert not RunLog.objects.filter(run=run, source="bridge").exists()  # the bridge wrote nothing itself

    handled(first)
    handled(again)  # ignored: the step is COMPLETED already, and it has no entry to write
    [bridge_entry] = RunLog.objects.filter(run=run, source="bridge")
    assert bridge_entry.step_id == "s1" and bridge_entry.data == entry["data"]
    assert bridge_entry.timestamp.isoformat() == entry["timestamp"]  # when the answer came, not when written
    sources = [source for source, _ in entries(run)]
    messages = [message for _, message in entries(run)]
    assert messages.index(entry["message"]) < messages.index("Step 's1' completed")
    assert sources.count("bridge") == 1


def test_a_malformed_call_log_is_written_as_far_as_it_can_be(monkeypatch):
    with CountingAgent(delay=0) as agent:
        run, task = dispatched(agent.url)
    before = timezone.now()
    result = {
        "run_id": task["run_id"],
        "task_id": task["task_id"],
        "correlation_id": task["correlation_id"],
        "status": "SUCCESS",
        "output_data": {"text": "y"},
        "error_message": None,
        "duration_ms": 3,
        "call_log": {"message": "odd\x00entry", "level": "shout", "data": ["not", "a dict"], "timestamp": "soon"},
    }
    handled(result)
    [entry] = RunLog.objects.filter(run=run, source="bridge")
    assert entry.message == "odd\\u0000entry" and entry.level == "info" and entry.data == {}
    assert before - timedelta(seconds=1) <= entry.timestamp <= timezone.now()
    assert run.steps.get().status == "COMPLETED"


@pytest.mark.parametrize("call_log", [None, "text", 3], ids=["absent", "text", "number"])
def test_a_result_without_a_usable_call_log_still_counts(monkeypatch, call_log):
    with CountingAgent(delay=0) as agent:
        run, task = dispatched(agent.url)
    result = {"run_id": task["run_id"], "correlation_id": task["correlation_id"], "status": "SUCCESS"}
    handled(result if call_log is None else {**result, "call_log": call_log})  # None: from an older bridge
    assert run.steps.get().status == "COMPLETED"
    assert not RunLog.objects.filter(run=run, source="bridge").exists()
