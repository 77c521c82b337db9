"""End to end, agents that take time or ask for input (A2A tasks): the demo agent's `think` and `ask`
skills through the whole system (HTTP, Kafka, executor, bridge), over A2A 1.0 and 0.3 (the demo agent's
`/0.3/...` agents offer only 0.3), followed by polling (`GetTask` / `tasks/get`) and by streaming
(`SubscribeToTask` / `tasks/resubscribe`, the `-stream` agents); a person answering a step; cancel
reaching the agent; the bridge killed while it follows a task; a step deadline while the agent works."""

import signal
import time
import uuid

import httpx
import pytest

from tests.support.system import System, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e-a2a-tasks")]  # one system per module

# Agent name -> path at the demo agent. `-03`: a card offering only A2A 0.3; `-stream`: a streaming card.
AGENTS = {
    f"tt-{skill}{stream}{old}": f"{'/0.3' if old else ''}/{skill}{stream}"
    for skill in ("think", "ask")
    for stream in ("", "-stream")
    for old in ("", "-03")
}
AGENTS["tt-echo"] = "/echo"
THINKERS = ["tt-think", "tt-think-stream", "tt-think-03", "tt-think-stream-03"]
ASKERS = ["tt-ask", "tt-ask-stream", "tt-ask-03", "tt-ask-stream-03"]


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    # A short poll cap, so a polled task's end is seen within a second.
    extra = {"A2A_POLL_INITIAL_MS": "200", "A2A_POLL_MAX_MS": "1000"}
    system = System(tmp_path_factory.mktemp("a2a-tasks"), extra_env=extra).start()
    try:
        for name, path in AGENTS.items():
            body = {"name": name, "url": system.agent_url + path, "retry_config": {"max_retries": 0}}
            response = system.api("POST", "/agents", body)
            assert response.status_code == 201, response.text
        yield system
    finally:
        system.stop()


def two_steps(system: System, agent: str, first_input: dict, **first_step) -> str:
    """s1 calls `agent` with `first_input`; s2 (echo) gets s1's whole output. Returns the workflow id."""
    definition = {
        "name": f"tasks-{uuid.uuid4().hex[:8]}",
        "start_step": "s1",
        "steps": {
            "s1": {
                "id": "s1",
                "agent_name": agent,
                "input_mapping": first_input,
                "next_step": "s2",
                "timeout_seconds": 60,
                **first_step,
            },
            "s2": {"id": "s2", "agent_name": "tt-echo", "input_mapping": {"from_s1": "${s1.output}"}},
        },
    }
    response = system.api("POST", "/workflows", definition)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def execute(system: System, workflow_id: str) -> str:
    response = system.api("POST", f"/workflows/{workflow_id}/execute", {"input_data": {}})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def step(system: System, run_id: str, step_id: str = "s1") -> dict | None:
    items = system.api("GET", f"/runs/{run_id}/steps?page_size=100").json()["items"]
    tries = [s for s in items if s["step_id"] == step_id]
    return tries[-1] if tries else None


def step_when(system: System, run_id: str, check, what: str, timeout: float = 30) -> dict:
    """Waits until s1 of the run satisfies `check`; the step then."""

    def ready():
        found = step(system, run_id)
        return found if found and check(found) else None

    try:
        return wait_for(ready, timeout=timeout, interval=0.1, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast: {step(system, run_id)}\n{system.logs()}") from None


def agent_calls(system: System, run_id: str, step_id: str = "s1") -> list[dict]:
    marker = f"corr-{run_id}-{step_id}-"
    return [c for c in system.agent_calls() if (c.get("correlation_id") or "").startswith(marker)]


def cancels(system: System) -> list[dict]:
    return httpx.get(system.agent_url + "/cancels", timeout=10).json()


def run_logs(system: System, run_id: str) -> list[dict]:
    return system.api("GET", f"/runs/{run_id}/logs?page_size=100").json()["items"]


def completed(system: System, run_id: str, timeout: float = 60) -> dict:
    run = system.run_wait(run_id, timeout=timeout)
    assert run["status"] == "COMPLETED", (run, step(system, run_id), system.logs())
    return run


@pytest.mark.parametrize("agent", THINKERS)
def test_a_working_task_is_followed_to_completed(system, agent):
    run_id = execute(system, two_steps(system, agent, {"seconds": 3, "topic": "tea"}))
    # While the agent works, the step is RUNNING and already knows the agent's task.
    working = step_when(system, run_id, lambda s: s["agent_task_id"], "the agent's task id on the step")
    assert working["status"] == "RUNNING" and working["agent_context_id"]

    run = completed(system, run_id)
    first = step(system, run_id)
    assert first["output_data"]["thought_seconds"] == 3 and first["output_data"]["topic"] == "tea"
    assert (first["agent_task_id"], first["agent_context_id"]) == (
        working["agent_task_id"],
        working["agent_context_id"],
    )
    assert run["output_data"]["from_s1"]["thought_seconds"] == 3
    # Called once; followed, never called again.
    [call] = agent_calls(system, run_id)
    assert (call["task_id"], call["context_id"], call["reply"]) == (
        first["agent_task_id"],
        first["agent_context_id"],
        False,
    )
    assert first["duration_ms"] >= 3000


@pytest.mark.parametrize("agent", ASKERS)
def test_input_required_then_an_answer_completes_the_step(system, agent):
    run_id = execute(system, two_steps(system, agent, {"question": "Which colour?", "options": ["red", "blue"]}))
    waiting = step_when(system, run_id, lambda s: s["status"] == "INPUT_REQUIRED", "the step to wait for input")
    request = waiting["input_request"]
    assert (request["state"], request["message"]) == ("input-required", "Which colour?")
    assert request["data"] == {"question": "Which colour?", "options": ["red", "blue"]}
    assert request["requested_at"]
    run = system.api("GET", f"/runs/{run_id}").json()
    assert (run["status"], run["waiting_for_input"]) == ("RUNNING", True)
    listed = system.api("GET", "/runs?waiting_for_input=true&page_size=100").json()["items"]
    assert run_id in [r["id"] for r in listed]
    events = system.db_rows("SELECT type FROM runs_event WHERE run_id = %s ORDER BY id", (run_id,))
    assert ("step.input_required",) in events

    respond = f"/runs/{run_id}/steps/{waiting['id']}/respond"
    assert system.api("POST", respond, {}).status_code == 422
    answered = system.api("POST", respond, {"text": "blue", "data": {"shade": "dark"}})
    assert answered.status_code == 202, answered.text

    run = completed(system, run_id)
    assert run["waiting_for_input"] is False
    first = step(system, run_id)
    assert first["output_data"]["answer"] == "blue" and first["output_data"]["data"] == {"shade": "dark"}
    assert run["output_data"]["from_s1"]["question"] == "Which colour?"
    # The question and the answer in one agent task: the answer is a message in the same task and context.
    calls = agent_calls(system, run_id)
    assert [c["reply"] for c in calls] == [False, True]
    assert {(c["task_id"], c["context_id"]) for c in calls} == {(first["agent_task_id"], first["agent_context_id"])}
    assert calls[1]["input"] == {"text": "blue", "data": {"shade": "dark"}}
    assert system.api("POST", respond, {"text": "again"}).status_code == 409


def test_auth_required_is_waiting_for_input_too(system):
    run_id = execute(system, two_steps(system, "tt-ask-03", {"auth": True, "question": "Sign in, then say ok"}))
    waiting = step_when(system, run_id, lambda s: s["status"] == "INPUT_REQUIRED", "the step to wait for sign-in")
    assert waiting["input_request"]["state"] == "auth-required"
    assert waiting["input_request"]["message"] == "Sign in, then say ok"
    assert system.api("GET", f"/runs/{run_id}").json()["waiting_for_input"] is True
    response = system.api("POST", f"/runs/{run_id}/steps/{waiting['id']}/respond", {"data": {"token": "t-1"}})
    assert response.status_code == 202, response.text
    completed(system, run_id)
    first = step(system, run_id)
    # The bridge adds the agent's task and context ids to the output (wire-contract.md).
    assert first["output_data"] == {
        "question": "Sign in, then say ok",
        "answer": None,
        "data": {"token": "t-1"},
        "task_id": first["agent_task_id"],
        "context_id": first["agent_context_id"],
    }


@pytest.mark.parametrize(("agent", "first_input"), [("tt-think", {"seconds": 60}), ("tt-ask-stream-03", {})])
def test_cancelling_the_run_cancels_the_agents_task(system, agent, first_input):
    run_id = execute(system, two_steps(system, agent, first_input))
    started = step_when(system, run_id, lambda s: s["agent_task_id"], "the agent's task id on the step")
    if agent.startswith("tt-ask"):
        step_when(system, run_id, lambda s: s["status"] == "INPUT_REQUIRED", "the question")
    response = system.api("POST", f"/runs/{run_id}/cancel", {"reason": "changed my mind"})
    assert response.status_code == 200, response.text
    assert system.run_wait(run_id)["status"] == "CANCELLED"

    task_id = started["agent_task_id"]
    entry = wait_for(
        lambda: next((c for c in cancels(system) if c["task_id"] == task_id), None),
        timeout=20,
        what="CancelTask to reach the agent",
    )
    assert entry["skill"] == agent.removeprefix("tt-").split("-")[0]
    assert entry["state"] == ("TASK_STATE_WORKING" if agent == "tt-think" else "TASK_STATE_INPUT_REQUIRED")
    assert wait_for(
        lambda: [e for e in run_logs(system, run_id) if e["source"] == "bridge" and "cancel" in e["message"].lower()],
        timeout=10,
        what="the bridge to log the cancel on the run",
    )
    assert step(system, run_id)["status"] == "CANCELLED"
    assert agent_calls(system, run_id, "s2") == []


@pytest.mark.parametrize("agent", ["tt-think", "tt-think-stream-03"])
def test_bridge_killed_while_following_a_task_resumes_it_without_calling_again(system, agent):
    run_id = execute(system, two_steps(system, agent, {"seconds": 5}))
    started = step_when(system, run_id, lambda s: s["agent_task_id"], "the agent's task id on the step")
    system.processes["bridge"].stop(signal.SIGKILL)
    time.sleep(1)
    system.processes["bridge"].start()

    completed(system, run_id, timeout=60)
    first = step(system, run_id)
    assert first["agent_task_id"] == started["agent_task_id"]
    assert first["output_data"]["thought_seconds"] == 5
    # One call: the restarted bridge followed the stored task instead of sending the message again.
    assert len(agent_calls(system, run_id)) == 1
    assert len(agent_calls(system, run_id, "s2")) == 1


@pytest.mark.parametrize("agent", ["tt-think-03", "tt-think-stream"])
def test_a_deadline_while_the_agent_works_fails_the_step_naming_the_last_state(system, agent):
    run_id = execute(system, two_steps(system, agent, {"seconds": 60}, timeout_seconds=3))
    started = step_when(system, run_id, lambda s: s["agent_task_id"], "the agent's task id on the step")
    run = system.run_wait(run_id, timeout=40)
    assert run["status"] == "FAILED", run
    first = step(system, run_id)
    assert first["status"] == "FAILED"
    assert "working" in first["error_message"], first["error_message"]
    assert agent_calls(system, run_id, "s2") == []
    # The step timed out with the agent's task still open: the agent is told to stop.
    wait_for(
        lambda: any(c["task_id"] == started["agent_task_id"] for c in cancels(system)),
        timeout=20,
        what="CancelTask after the timeout",
    )


def test_no_answer_in_time_fails_the_step_and_withdraws_the_question(system):
    run_id = execute(system, two_steps(system, "tt-ask-stream", {"question": "Anyone?"}, input_timeout_seconds=2))
    waiting = step_when(system, run_id, lambda s: s["status"] == "INPUT_REQUIRED", "the step to wait for input")
    run = system.run_wait(run_id, timeout=40)
    assert (run["status"], run["waiting_for_input"]) == ("FAILED", False)
    first = step(system, run_id)
    assert first["status"] == "FAILED"
    assert "no input within 2 s" in first["error_message"], first["error_message"]
    wait_for(
        lambda: any(c["task_id"] == waiting["agent_task_id"] for c in cancels(system)),
        timeout=20,
        what="CancelTask for the unanswered question",
    )
    assert agent_calls(system, run_id, "s2") == []
