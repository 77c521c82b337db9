"""End to end: HTTP in, Kafka between the real processes, a real A2A agent at the far end."""

import json
import signal
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.runs.helpers import chain
from tests.support.system import System, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e-system")]  # one system per module


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    system = System(tmp_path_factory.mktemp("system")).start()
    try:
        yield system
    finally:
        system.stop()


def agent(system, name: str, skill: str, **fields) -> dict:
    body = {"name": name, "url": f"{system.agent_url}/{skill}", **fields}
    response = system.api("POST", "/agents", body)
    assert response.status_code == 201, response.text
    return response.json()


def workflow(system, *agents: str, **step_inputs) -> dict:
    """A chain s1 -> s2 -> ... passing `text` along; step_inputs adds input fields per step."""
    schema = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
    body = chain(*agents, name=f"wf-{uuid.uuid4().hex[:8]}", input_schema=schema)
    for step_id, extra in step_inputs.items():
        body["steps"][step_id]["input_mapping"].update(extra)
    response = system.api("POST", "/workflows", body)
    assert response.status_code == 201, response.text
    return response.json()


def execute(system, wf: dict, text: str = "hello big world") -> dict:
    response = system.api("POST", f"/workflows/{wf['id']}/execute", {"input_data": {"text": text}})
    assert response.status_code == 202, response.text
    return response.json()


def calls_for(system, run_id: str, step_id: str | None = None) -> list[dict]:
    marker = f"corr-{run_id}-" + (f"{step_id}-" if step_id else "")
    return [c for c in system.agent_calls() if (c.get("correlation_id") or "").startswith(marker)]


def steps_of(system, run_id: str) -> list[dict]:
    return system.api("GET", f"/runs/{run_id}/steps").json()["items"]


def monitoring(system, run_id: str, expected: set[tuple[str, str]], timeout: float = 20) -> list[dict]:
    consumer = KafkaConsumer(bootstrap_servers=system.kafka, enable_auto_commit=False, consumer_timeout_ms=500)
    try:
        partitions = [
            TopicPartition("workflow.monitoring.updates", p)
            for p in consumer.partitions_for_topic("workflow.monitoring.updates") or []
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        seen: list[dict] = []

        def complete():
            for record in consumer:
                value = json.loads(record.value)
                if value["run_id"] == run_id:
                    seen.append(value)
            return expected <= {(m["step_id"], m["status"]) for m in seen}

        wait_for(complete, timeout=timeout, interval=0, what="monitoring updates")
        return seen
    finally:
        consumer.close()


def test_a_workflow_runs_to_completion(system):
    agent(system, "e2e-upper", "uppercase")
    agent(system, "e2e-count", "word_count")
    wf = workflow(system, "e2e-upper", "e2e-count")
    run = execute(system, wf)
    assert run["status"] == "PENDING"
    done = system.run_wait(run["id"])
    assert done["status"] == "COMPLETED", done
    assert done["output_data"]["count"] == 3 and done["output_data"]["words"] == ["HELLO", "BIG", "WORLD"]
    assert done["started_at"] and done["completed_at"] and done["error_message"] is None

    steps = steps_of(system, run["id"])
    assert [(s["step_id"], s["status"]) for s in steps] == [("s1", "COMPLETED"), ("s2", "COMPLETED")]
    assert steps[0]["output_data"]["text"] == "HELLO BIG WORLD"
    assert steps[1]["input_data"] == {"text": "HELLO BIG WORLD"}

    logs = system.api("GET", f"/runs/{run['id']}/logs?page_size=100").json()["items"]
    assert {entry["source"] for entry in logs} == {"api", "executor", "bridge"}
    assert logs[-1]["message"] == "Run completed"
    updates = monitoring(
        system,
        run["id"],
        {
            ("workflow", "RUNNING"),
            ("s1", "RUNNING"),
            ("s1", "COMPLETED"),
            ("s2", "COMPLETED"),
            ("workflow", "COMPLETED"),
        },
    )
    assert all(u["timestamp"] and "metadata" in u for u in updates)
    assert len(calls_for(system, run["id"])) == 2


def test_a_failing_agent_fails_the_run_with_its_error(system):
    agent(system, "e2e-echo", "echo")
    agent(system, "e2e-fail", "fail")
    run = execute(system, workflow(system, "e2e-echo", "e2e-fail"))
    done = system.run_wait(run["id"])
    assert done["status"] == "FAILED"
    assert done["error_message"].startswith("Step 's2' failed: ") and "failed on purpose" in done["error_message"]
    steps = steps_of(system, run["id"])
    assert [(s["step_id"], s["status"]) for s in steps] == [("s1", "COMPLETED"), ("s2", "FAILED")]
    errors = system.api("GET", f"/runs/{run['id']}/logs?level=error").json()["items"]
    assert any(e["source"] == "bridge" for e in errors) and any(
        e["message"] == f"Run failed: {done['error_message']}" for e in errors
    )
    monitoring(system, run["id"], {("s2", "FAILED"), ("workflow", "FAILED")})


def test_an_unreachable_agent_fails_after_its_retries(system):
    retry = {"max_retries": 2, "initial_delay_ms": 50, "max_delay_ms": 100, "backoff_multiplier": 2}
    response = system.api(
        "POST",
        "/agents",
        # A timeout with room for a bridge that has just started (joining its consumer group) on a busy
        # machine: the calls themselves fail at once (connection refused).
        {"name": "e2e-nowhere", "url": "http://127.0.0.1:1/", "timeout_ms": 20000, "retry_config": retry},
    )
    assert response.status_code == 201
    done = system.run_wait(execute(system, workflow(system, "e2e-nowhere"))["id"])
    assert done["status"] == "FAILED"
    assert "Could not reach agent at http://127.0.0.1:1/" in done["error_message"]
    assert "after 3 attempts" in done["error_message"]


def test_retry_resumes_at_the_failed_step_without_calling_completed_steps(system):
    agent(system, "e2e-first", "uppercase")
    flaky = agent(system, "e2e-flaky", "fail")
    agent(system, "e2e-last", "word_count")
    run = execute(system, workflow(system, "e2e-first", "e2e-flaky", "e2e-last"), text="one two")
    assert system.run_wait(run["id"])["status"] == "FAILED"
    assert len(calls_for(system, run["id"], "s1")) == 1

    fixed = system.api("PATCH", f"/agents/{flaky['id']}", {"url": f"{system.agent_url}/echo"})
    assert fixed.status_code == 200
    retried = system.api("POST", f"/runs/{run['id']}/retry")
    assert retried.status_code == 202 and retried.json()["attempt"] == 2
    done = system.run_wait(run["id"])
    assert done["status"] == "COMPLETED" and done["output_data"]["count"] == 2
    assert len(calls_for(system, run["id"], "s1")) == 1  # completed in attempt 1: not called again
    assert len(calls_for(system, run["id"], "s2")) == 2 and len(calls_for(system, run["id"], "s3")) == 1
    again = system.api("POST", f"/runs/{run['id']}/retry")
    assert again.status_code == 409


def test_cancel_a_running_run_stops_further_steps(system):
    agent(system, "e2e-slow", "slow")
    agent(system, "e2e-after", "echo")
    run = execute(system, workflow(system, "e2e-slow", "e2e-after", s1={"seconds": 2}))
    wait_for(lambda: calls_for(system, run["id"], "s1"), timeout=30, what="the slow step to start")
    cancelled = system.api("POST", f"/runs/{run['id']}/cancel", {"reason": "changed my mind"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    time.sleep(3.5)  # the slow call ends and its result comes back
    assert calls_for(system, run["id"], "s2") == []
    final = system.api("GET", f"/runs/{run['id']}").json()
    assert final["status"] == "CANCELLED" and final["cancelled_by"] == "e2e"
    assert [(s["step_id"], s["status"]) for s in steps_of(system, run["id"])] == [("s1", "CANCELLED")]
    logs = system.api("GET", f"/runs/{run['id']}/logs").json()["items"]
    # The bridge abandons the call within a second (runs/abandon.py); had the answer come first, the
    # executor would have ignored it.
    abandoned = [e for e in logs if e["source"] == "bridge" and "call abandoned: step cancelled" in e["message"]]
    assert abandoned or any("ignored" in entry["message"] for entry in logs), logs
    assert system.api("POST", f"/runs/{run['id']}/cancel", {}).status_code == 409
    monitoring(system, run["id"], {("workflow", "CANCELLED")})


def test_executor_killed_mid_run_then_restarted_finishes_the_run(system):
    agent(system, "e2e-slow2", "slow")
    agent(system, "e2e-upper2", "uppercase")
    run = execute(system, workflow(system, "e2e-slow2", "e2e-upper2", s1={"seconds": 2}), text="survive")
    wait_for(lambda: calls_for(system, run["id"], "s1"), timeout=30, what="the slow step to start")
    executor = system.processes["executor"]
    executor.stop(signal.SIGKILL)
    time.sleep(3)  # the agent answers while no executor runs
    assert system.api("GET", f"/runs/{run['id']}").json()["status"] == "RUNNING"
    executor.start()
    done = system.run_wait(run["id"])
    assert done["status"] == "COMPLETED" and done["output_data"]["text"] == "SURVIVE"
    assert len(calls_for(system, run["id"], "s1")) == 1


def test_malformed_messages_are_skipped_and_the_engine_goes_on(system):
    producer = KafkaProducer(bootstrap_servers=system.kafka)
    garbage = [b"not json", b"[1, 2]", b'{"run_id": "nope"}', json.dumps({"correlation_id": "corr-x"}).encode()]
    for topic in (
        "workflow.execution.requests",
        "orchestrator.tasks.http",
        "results.topic",
        "workflow.cancellation.requests",
    ):
        for value in garbage:
            producer.send(topic, key=b"garbage", value=value)
    producer.flush()
    producer.close()
    agent(system, "e2e-upper5", "uppercase")
    done = system.run_wait(execute(system, workflow(system, "e2e-upper5"), text="still fine")["id"])
    assert done["status"] == "COMPLETED" and done["output_data"]["text"] == "STILL FINE"
    assert system.processes["executor"].alive() and system.processes["bridge"].alive()


def test_graceful_shutdown_on_sigterm(system):
    for name in ("executor", "bridge"):
        assert system.processes[name].stop(signal.SIGTERM) == 0, system.logs()
        system.processes[name].start()
    agent(system, "e2e-upper4", "uppercase")
    done = system.run_wait(execute(system, workflow(system, "e2e-upper4"), text="again")["id"])
    assert done["status"] == "COMPLETED"


# Last: the embedded broker comes back empty, which disturbs every consumer for a while.
def test_runs_requested_while_kafka_is_down_run_when_it_is_back(system):
    agent(system, "e2e-upper3", "uppercase")
    wf = workflow(system, "e2e-upper3")
    system.processes["kafka"].stop()
    run = execute(system, wf, text="queued")
    assert run["status"] == "PENDING"
    time.sleep(2)
    assert system.api("GET", f"/runs/{run['id']}").json()["status"] == "PENDING"
    system.broker()  # same address; an empty in-memory broker, as after a real outage with data loss
    done = system.run_wait(run["id"], timeout=90)
    assert done["status"] == "COMPLETED" and done["output_data"]["text"] == "QUEUED"
