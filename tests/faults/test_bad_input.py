"""Faults that come in as data: poison results published straight on the results topic, a 2 MB input
to the API, an agent that answers 50 MB (or without end)."""

import json
import re
import uuid

import pytest
from kafka import KafkaProducer

from tests.faults.helpers import (
    agent_register,
    calls_for,
    calls_started,
    correlation_id,
    demo_agents,
    execute,
    get_json,
    steps_of,
    workflow,
)
from tests.faults.invariants import assert_completed, assert_invariants
from tests.faults.misbehaving_agent import MisbehavingAgent
from tests.support.system import System, wait_for

# One worker runs the module, so its system starts once (./dev test: --dist loadgroup).
pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.xdist_group("faults-bad-input")]

GARBAGE = [
    None,  # a tombstone: no value at all
    b"not json",
    b"\xff\xfe\x00 not utf-8",
    b"[1, 2]",
    b'"a string"',
    b"null",
    b"42",
    b"{}",
    b'{"correlation_id": 5, "run_id": ["x"]}',
    b'{"correlation_id": "corr-x", "run_id": "not-a-uuid", "status": "SUCCESS"}',
]
TOO_BIG = 10**30  # for every integer column; JSON has no limit
REAL_ANSWER_MS = 8000


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    system = System(tmp_path_factory.mktemp("faults-input")).start()
    try:
        demo_agents(system, "fi", "echo", "uppercase", "word_count")
        yield system
    finally:
        system.stop()


def result(run_id: str, step: dict | None, **fields) -> dict:
    """An agent result as the bridge would publish it, for `step` (None: an unknown correlation id)."""
    unknown = {"step_id": "s1", "task_id": f"task-s1-{uuid.uuid4().hex[:8]}"}
    return {
        "run_id": run_id,
        "task_id": (step or unknown)["task_id"],
        "status": "SUCCESS",
        "output_data": None,
        "correlation_id": correlation_id(run_id, step or unknown),
        "error_message": None,
        "timestamp": "2026-01-01T00:00:00Z",
        "duration_ms": 5,
        **fields,
    }


def running_s1(system: System, run_id: str) -> dict | None:
    steps = (get_json(system, f"/runs/{run_id}/steps") or {}).get("items", [])
    return next((s for s in steps if s["step_id"] == "s1" and s["status"] == "RUNNING"), None)


def test_poison_results_on_the_topic_stop_nothing(system):
    # The agent's real answers come after REAL_ANSWER_MS: the poison must be recorded first.
    slow = workflow(system, "fi-echo", "fi-uppercase", s1={"delay_ms": REAL_ANSWER_MS})
    fast = workflow(system, "fi-uppercase", "fi-word_count")
    topic = system.env.get("KAFKA_RESULTS_TOPIC", "results.topic")
    producer = KafkaProducer(bootstrap_servers=system.kafka)
    try:
        producer.partitions_for(topic)  # connected before the clock starts
        nul_ok, nul_big, nul_failure = targets = [execute(system, slow, text=f"target {i}") for i in range(3)]
        wait_for(lambda: all(running_s1(system, r) for r in targets), timeout=30, what="the steps to be in flight")
        # The agent has the calls: a task the bridge picks up only after its step ended is dropped
        # unlogged (nothing waits for it), and the check at the end needs a call to abandon or answer.
        wait_for(lambda: calls_started(system, targets), timeout=30, what="the agent to receive the calls")
        in_flight = {run_id: running_s1(system, run_id) for run_id in targets}
        poisons = {
            nul_ok: result(nul_ok, in_flight[nul_ok], output_data={"text": "poisoned\x00text", "k\x00": ["\x00"]}),
            nul_big: result(
                nul_big,
                in_flight[nul_big],
                output_data={"text": "big\x00numbers", "n": TOO_BIG, "f": 1.5e300},
                duration_ms=TOO_BIG,
            ),
            nul_failure: result(
                nul_failure, in_flight[nul_failure], status="FAILURE", error_message="agent broke\x00down"
            ),
        }
        good_before = [execute(system, fast, text=f"good before {i}") for i in range(2)]
        # Keyed by the real runs: the garbage lands in the partitions their real results go through,
        # ahead of them.
        for key in [*targets, *good_before, str(uuid.uuid4())]:
            for value in GARBAGE:
                producer.send(topic, key=key.encode(), value=value)
            unknown = result(key, None, output_data={"text": "\x00", "n": TOO_BIG}, duration_ms=TOO_BIG)
            producer.send(topic, key=key.encode(), value=json.dumps(unknown).encode())
        for run_id, poison in poisons.items():
            producer.send(topic, key=run_id.encode(), value=json.dumps(poison).encode())
        producer.flush(10)
    finally:
        producer.close(5)
    good_after = [execute(system, fast, text=f"good after {i}") for i in range(2)]

    runs = assert_invariants(system, targets + good_before + good_after, timeout=40)
    for run_id in good_before + good_after:
        assert runs[run_id]["status"] == "COMPLETED", runs[run_id]
    assert runs[good_after[1]]["output_data"]["words"] == ["GOOD", "AFTER", "1"]
    for run_id in (nul_ok, nul_big):  # completed with the NULs written out, or failed with a reason
        [s1] = [s for s in steps_of(system, run_id) if s["step_id"] == "s1"]
        real = "delay_ms" in (s1["output_data"] or {})  # the echo's own answer: the poison came too late
        assert not real, f"the agent's real answer was recorded before the poison (raise REAL_ANSWER_MS): {s1}"
        if s1["status"] == "COMPLETED":
            assert "\x00" not in json.dumps(s1["output_data"], ensure_ascii=False)
            assert s1["output_data"]["text"].replace("\\u0000", "") in ("poisonedtext", "bignumbers"), s1
            assert runs[run_id]["status"] == "COMPLETED", runs[run_id]
        else:
            assert s1["status"] == "FAILED" and s1["error_message"], s1
            assert runs[run_id]["status"] == "FAILED" and "s1" in runs[run_id]["error_message"]
        assert 0 <= s1["duration_ms"] < 10 * 60 * 1000, s1  # not the agent's absurd figure
    assert runs[nul_failure]["status"] == "FAILED"
    assert "agent broke" in runs[nul_failure]["error_message"], runs[nul_failure]

    # The real calls find their steps ended: the bridge abandons them (runs/abandon.py), or an answer
    # that comes first is ignored by the executor. Either way nothing changes.
    def answers_ignored():
        logs = [get_json(system, f"/runs/{r}/logs?page_size=100") for r in targets]
        return all(
            log and any("ignored" in e["message"] or "call abandoned" in e["message"] for e in log["items"])
            for log in logs
        )

    wait_for(answers_ignored, timeout=REAL_ANSWER_MS / 1000 + 10, what="the real calls to be abandoned or ignored")
    for run_id in targets:
        assert get_json(system, f"/runs/{run_id}")["status"] == runs[run_id]["status"]
        assert len(calls_for(system, run_id, "s1")) == 1

    # A late duplicate for a completed step, carrying a NUL and a number no float holds (1e400).
    [done] = [s for s in steps_of(system, good_before[0]) if s["step_id"] == "s1"]
    late = json.dumps(result(good_before[0], done, output_data={"text": "late\x00"}))
    late = late.replace('"output_data": {', '"output_data": {"x": 1e400, ')
    producer = KafkaProducer(bootstrap_servers=system.kafka)
    try:
        producer.send(topic, key=good_before[0].encode(), value=late.encode())
        producer.flush(10)
    finally:
        producer.close(5)
    last = execute(system, fast, text="still going")
    assert_invariants(system, [good_before[0], last], timeout=20)
    assert get_json(system, f"/runs/{good_before[0]}")["output_data"] == runs[good_before[0]]["output_data"]
    assert system.processes["executor"].alive() and system.processes["bridge"].alive()


def test_a_2_mb_input_is_refused_with_413_and_creates_no_run(system):
    wf = workflow(system, "fi-uppercase")
    runs_before = system.api("GET", f"/runs?workflow_id={wf['id']}").json()["total"]

    path = f"/workflows/{wf['id']}/execute"
    response = system.api("POST", path, {"input_data": {"text": "x" * (2 * 1024 * 1024)}})
    assert response.status_code == 413, response.text[:500]
    body = response.json()
    assert body["status_code"] == 413 and body["error"] and body["detail"], body
    assert body["path"] == f"/api/v1{path}" and body["request_id"] and body["timestamp"], body
    assert system.api("GET", f"/runs?workflow_id={wf['id']}").json()["total"] == runs_before

    normal = execute(system, wf, text="a normal request")
    runs = assert_invariants(system, [normal], timeout=20)
    assert runs[normal]["status"] == "COMPLETED" and runs[normal]["output_data"]["text"] == "A NORMAL REQUEST"
    assert system.api("GET", f"/runs?workflow_id={wf['id']}").json()["total"] == runs_before + 1


def test_an_agent_answering_50_mb_fails_its_step_and_the_bridge_goes_on(system):
    with MisbehavingAgent() as bad:
        agent_register(system, "fi-huge", f"{bad.url}/huge")
        agent_register(system, "fi-endless", f"{bad.url}/endless")
        huge = execute(system, workflow(system, "fi-huge", timeout_seconds=60), text="answer big")
        endless = execute(system, workflow(system, "fi-endless", timeout_seconds=60), text="answer forever")
        wait_for(lambda: len(bad.calls) >= 2, timeout=30, what="the misbehaving agent to be called")

        fast = workflow(system, "fi-uppercase", "fi-word_count")
        others = [execute(system, fast, text=f"meanwhile {i}") for i in range(4)]
        done = assert_invariants(system, others, timeout=30)
        assert_completed(done)

        runs = assert_invariants(system, [huge, endless], timeout=30)
        for run_id in (huge, endless):
            run = runs[run_id]
            assert run["status"] == "FAILED", run
            error = run["error_message"]
            assert re.search(r"limit|too large|larger than|exceed", error, re.IGNORECASE), error
            assert "Timed out" not in error, error
        assert len(bad.calls) <= 2 * (1 + 3), bad.calls  # a size limit is no reason for many retries
