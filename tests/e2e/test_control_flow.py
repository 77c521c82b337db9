"""End to end, control flow: every example imported with `import_workflows` and run over HTTP, Kafka,
the executor, the bridge and the demo agent; retry and cancel inside a loop. On SQLite, and on
PostgreSQL too when DATABASE_URL names one (as CI does)."""

import json
import os
import time
import uuid
from pathlib import Path

import pytest

from demo.setup import DEMO_SKILLS
from tests.support.system import System, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e-control-flow")]  # one system per module

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DATABASES = ["sqlite"] + (["postgresql"] if os.environ.get("DATABASE_URL", "").startswith("postgres") else [])


@pytest.fixture(scope="module", params=DATABASES)
def system(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"control-flow-{request.param}")
    extra = {"DATABASE_URL": f"sqlite:///{tmp / 'system.sqlite3'}"} if request.param == "sqlite" else {}
    extra["WEBHOOK_ALLOW_PRIVATE_URLS"] = "1"  # the test receiver listens on 127.0.0.1
    system = System(tmp, extra_env=extra).start()
    try:
        for skill in DEMO_SKILLS:
            body = {"name": f"demo-{skill}", "url": f"{system.agent_url}/{skill}"}
            assert system.api("POST", "/agents", body).status_code == 201
        yield system
    finally:
        system.stop()


def execute(system, workflow_id: str, input_data: dict) -> dict:
    response = system.api("POST", f"/workflows/{workflow_id}/execute", {"input_data": input_data})
    assert response.status_code == 202, response.text
    return response.json()


def steps_of(system, run_id: str) -> list[dict]:
    return system.api("GET", f"/runs/{run_id}/steps?page_size=100").json()["items"]


def calls_for(system, run_id: str) -> list[dict]:
    return [c for c in system.agent_calls() if (c.get("correlation_id") or "").startswith(f"corr-{run_id}-")]


def by_name(system, name: str) -> dict:
    [found] = system.api("GET", f"/workflows?name={name}").json()["items"]
    return found


def test_every_example_imports_and_completes(system):
    files = sorted(EXAMPLES.glob("*.json"))
    out = system.manage("import_workflows", *map(str, files))
    assert f"{len(files)} imported, 0 failed" in out
    runs = {}
    for path in files:
        name = json.loads(path.read_text())["name"]
        sample = json.loads((EXAMPLES / "inputs" / path.name).read_text())
        runs[path.stem] = execute(system, by_name(system, name)["id"], sample)["id"]
    for stem, run_id in runs.items():
        run = system.run_wait(run_id, timeout=90)
        assert run["status"] == "COMPLETED", (stem, run["error_message"], system.logs())
        agent_rows = [s for s in steps_of(system, run_id) if s["step_type"] == "agent" and s["status"] != "SKIPPED"]
        calls = calls_for(system, run_id)
        # Every agent step was called exactly once: none lost, none repeated.
        assert sorted(c["correlation_id"] for c in calls) == sorted(
            f"corr-{run_id}-{s['step_id']}-{s['task_id'].rsplit('-', 1)[-1]}" for s in agent_rows
        ), stem
    loop_steps = steps_of(system, runs["loop"])
    iterations = sorted((s["iteration"], s["status"]) for s in loop_steps if s["step_type"] == "iteration")
    assert iterations == [(0, "COMPLETED"), (1, "COMPLETED"), (2, "COMPLETED")]
    fork_steps = steps_of(system, runs["fork_join"])
    assert sorted(s["branch"] for s in fork_steps if s["step_type"] == "branch") == ["loud", "plain"]
    run = system.api("GET", f"/runs/{runs['fork_join']}").json()
    assert run["output_data"]["status"] == {"loud": "COMPLETED", "plain": "COMPLETED"}


def loop_workflow(system, name: str, body_agent: str, **config) -> dict:
    definition = {
        "name": name,
        "start_step": "each",
        "steps": {
            "each": {
                "id": "each",
                "type": "loop",
                "loop_config": {"collection": "${workflow.input.items}", "loop_body": ["first", "second"], **config},
            },
            "first": {"id": "first", "agent_name": "demo-echo", "input_mapping": {"item": "${loop.item}"}},
            "second": {"id": "second", "agent_name": body_agent, "input_mapping": {"seen": "${first.output.item}"}},
        },
    }
    response = system.api("POST", "/workflows", definition)
    assert response.status_code == 201, response.text
    return response.json()


def test_retry_inside_a_loop_calls_no_completed_step_again(system):
    flaky = system.api("POST", "/agents", {"name": f"flaky-{uuid.uuid4().hex[:6]}", "url": f"{system.agent_url}/fail"})
    flaky = flaky.json()
    wf = loop_workflow(system, f"retry-loop-{uuid.uuid4().hex[:6]}", flaky["name"], on_error="stop")
    run_id = execute(system, wf["id"], {"items": ["a", "b", "c"]})["id"]
    run = system.run_wait(run_id)
    assert run["status"] == "FAILED" and "iteration 0" in run["error_message"]
    first_calls = calls_for(system, run_id)
    assert sorted(c["skill"] for c in first_calls) == ["echo", "fail"]  # iteration 0 only; then it stopped

    assert system.api("PATCH", f"/agents/{flaky['id']}", {"url": f"{system.agent_url}/echo"}).status_code == 200
    assert system.api("POST", f"/runs/{run_id}/retry").status_code == 202
    run = system.run_wait(run_id, statuses=("COMPLETED", "FAILED"))
    assert run["status"] == "COMPLETED" and run["attempt"] == 2, run["error_message"]
    calls = calls_for(system, run_id)
    firsts = [c for c in calls if c["input"].get("item") is not None]
    # Iteration 0's first step completed in attempt 1: it is not called again.
    assert sorted(c["input"]["item"] for c in firsts) == ["a", "b", "c"]
    assert [item["seen"] for item in run["output_data"]["iterations"]] == ["a", "b", "c"]


def test_cancel_inside_a_loop_stops_everything(system):
    slow = f"slow-{uuid.uuid4().hex[:6]}"
    assert system.api("POST", "/agents", {"name": slow, "url": f"{system.agent_url}/slow"}).status_code == 201
    wf = loop_workflow(
        system, f"cancel-loop-{uuid.uuid4().hex[:6]}", slow, execution_mode="parallel", max_parallelism=2
    )
    run_id = execute(system, wf["id"], {"items": list(range(6))})["id"]
    wait_for(
        lambda: any(s["step_id"] == "second" and s["status"] == "RUNNING" for s in steps_of(system, run_id)),
        timeout=30,
        what="a slow step in flight",
    )
    assert system.api("POST", f"/runs/{run_id}/cancel", {"reason": "enough"}).status_code == 200
    time.sleep(4)  # the slow skill sleeps 2 s: its result arrives and must change nothing
    run = system.api("GET", f"/runs/{run_id}").json()
    assert run["status"] == "CANCELLED"
    steps = steps_of(system, run_id)
    assert not [s for s in steps if s["status"] in ("PENDING", "RUNNING")]
    started = {s["iteration"] for s in steps if s["step_id"] == "first"}
    assert started <= {0, 1, 2, 3} and len(started) < 6  # nothing new was dispatched after the cancel


def test_executor_killed_inside_a_loop_then_restarted_finishes_it(system):
    import signal

    slow = f"slow-{uuid.uuid4().hex[:6]}"
    assert system.api("POST", "/agents", {"name": slow, "url": f"{system.agent_url}/slow"}).status_code == 201
    name = f"kill-loop-{uuid.uuid4().hex[:6]}"
    wf = loop_workflow(system, name, slow, execution_mode="parallel", max_parallelism=3)
    run_id = execute(system, wf["id"], {"items": list(range(6))})["id"]
    wait_for(
        lambda: any(s["step_id"] == "second" and s["status"] == "RUNNING" for s in steps_of(system, run_id)),
        timeout=30,
        what="a slow step in flight",
    )
    executor = system.processes["executor"]
    executor.stop(signal.SIGKILL)
    time.sleep(3)  # results arrive while no executor runs
    executor.start()
    run = system.run_wait(run_id, timeout=90)
    assert run["status"] == "COMPLETED", run["error_message"]
    assert [item["seen"] for item in run["output_data"]["iterations"]] == list(range(6))
    calls = calls_for(system, run_id)
    assert sorted(c["input"]["item"] for c in calls if "item" in c["input"]) == list(range(6))  # once each
    assert len(calls) == 12


def test_bad_input_at_run_time_fails_the_step_naming_the_cause_and_any_join_survives_a_failure(system):
    tag = uuid.uuid4().hex[:6]
    echo = {"agent_name": "demo-echo", "input_mapping": {}}
    definitions = {
        "condition": {
            "name": f"bad-condition-{tag}",
            "start_step": "check",
            "steps": {
                "check": {
                    "id": "check",
                    "type": "conditional",
                    "condition": {"expression": "${workflow.input.score} > 0.5"},
                    "if_true_step": "yes",
                },
                "yes": {"id": "yes", **echo},
            },
        },
        "collection": {
            "name": f"bad-collection-{tag}",
            "start_step": "each",
            "steps": {
                "each": {
                    "id": "each",
                    "type": "loop",
                    "loop_config": {"collection": "${workflow.input.score}", "loop_body": ["body"]},
                },
                "body": {"id": "body", **echo},
            },
        },
        "any": {
            "name": f"any-join-{tag}",
            "start_step": "fan",
            "steps": {
                "fan": {
                    "id": "fan",
                    "type": "fork_join",
                    "fork_join_config": {
                        "branches": {"bad": {"steps": ["broken"]}, "good": {"steps": ["fine"]}},
                        "join_policy": "any",
                    },
                },
                "broken": {"id": "broken", "agent_name": "demo-fail", "input_mapping": {"message": "nope"}},
                "fine": {"id": "fine", **echo},
            },
        },
    }
    runs = {}
    for key, definition in definitions.items():
        response = system.api("POST", "/workflows", definition)
        assert response.status_code == 201, response.text
        runs[key] = execute(system, response.json()["id"], {"score": "high"})["id"]
    condition = system.run_wait(runs["condition"])
    assert condition["status"] == "FAILED"
    assert "Step 'check' failed: the condition" in condition["error_message"]
    assert "Cannot compare string 'high' with number 0.5" in condition["error_message"]
    collection = system.run_wait(runs["collection"])
    assert collection["status"] == "FAILED"
    assert "the collection ${workflow.input.score} is a string, not an array" in collection["error_message"]
    joined = system.run_wait(runs["any"])
    assert joined["status"] == "COMPLETED", joined["error_message"]
    assert joined["output_data"]["branch_status"]["good"] == "COMPLETED"


def test_webhooks_are_delivered_by_the_real_worker_signed_and_in_order(system):
    """The Celery worker of the running system sends them; the receiver verifies each with the
    standardwebhooks package."""
    from pytest_httpserver import HTTPServer
    from standardwebhooks.webhooks import Webhook

    receiver = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    receiver.expect_request("/hook", method="POST").respond_with_data("ok")
    receiver.start()
    try:
        hook = system.api("POST", "/webhooks", {"url": receiver.url_for("/hook"), "event_types": ["run.*"]})
        assert hook.status_code == 201, hook.text
        secret = hook.json()["secret"]
        definition = {
            "name": f"hooked-{uuid.uuid4().hex[:6]}",
            "start_step": "s1",
            "steps": {"s1": {"id": "s1", "agent_name": "demo-echo", "input_mapping": {"x": 1}}},
        }
        wf = system.api("POST", "/workflows", definition).json()
        run_id = execute(system, wf["id"], {})["id"]
        assert system.run_wait(run_id)["status"] == "COMPLETED"

        def bodies():
            found = []
            for request, _ in receiver.log:
                body = request.get_data(as_text=True)
                Webhook(secret).verify(body, dict(request.headers))  # raises when the signature is wrong
                found.append(json.loads(body))
            mine = [b for b in found if b["data"].get("id") == run_id]
            return mine if len(mine) >= 3 else None

        mine = wait_for(bodies, timeout=30, what="the run's webhooks")
        assert [b["type"] for b in mine] == ["run.pending", "run.running", "run.completed"]
        assert mine[-1]["data"]["status"] == "COMPLETED" and mine[-1]["timestamp"].endswith("Z")
        deliveries = system.api("GET", f"/webhooks/{hook.json()['id']}/deliveries?run_id={run_id}").json()
        assert {d["status"] for d in deliveries["items"]} == {"SUCCEEDED"} and deliveries["total"] == 3
    finally:
        receiver.clear()
        receiver.stop()
