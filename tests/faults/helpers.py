"""Building blocks of the fault tests: agents, workflows and runs made through the public API of a
running System (tests/support/system.py), and a look at what the demo agent was called with."""

import contextlib
import uuid

import httpx

from tests.runs.helpers import chain
from tests.support.system import System

TEXT_SCHEMA = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
# Long on purpose: a fault test must see its runs end because the engine carried on, not because a
# step timed out and was retried.
LONG_TIMEOUT_SECONDS = 120


def demo_agents(system: System, prefix: str, *skills: str) -> None:
    """Registers the demo agent's skills as agents `<prefix>-<skill>`."""
    for skill in skills:
        agent_register(system, f"{prefix}-{skill}", f"{system.agent_url}/{skill}")


def agent_register(system: System, name: str, url: str, **fields) -> dict:
    response = system.api("POST", "/agents", {"name": name, "url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def workflow(system: System, *agents: str, timeout_seconds: int = LONG_TIMEOUT_SECONDS, **step_inputs) -> dict:
    """A chain s1 -> s2 -> ... passing `text` along, every step with `timeout_seconds`; `s1={"delay_ms":
    3000}` adds input fields to a step (the demo agent sleeps on `delay_ms`)."""
    timeouts = {f"s{index}": {"timeout_seconds": timeout_seconds} for index in range(1, len(agents) + 1)}
    body = chain(*agents, name=f"faults-{uuid.uuid4().hex[:8]}", input_schema=TEXT_SCHEMA, **timeouts)
    for step_id, extra in step_inputs.items():
        body["steps"][step_id]["input_mapping"].update(extra)
    response = system.api("POST", "/workflows", body)
    assert response.status_code == 201, response.text
    return response.json()


def execute(system: System, wf: dict, text: str = "hello fault world") -> str:
    response = system.api("POST", f"/workflows/{wf['id']}/execute", {"input_data": {"text": text}})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def get_json(system: System, path: str):
    """The body of a GET, or None while the system cannot answer (a fault may be going on)."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        response = system.api("GET", path)
        if response.status_code == 200:
            return response.json()
    return None


def steps_of(system: System, run_id: str) -> list[dict]:
    body = get_json(system, f"/runs/{run_id}/steps?page_size=100")
    assert body is not None, f"the steps of run {run_id} cannot be read"
    return body["items"]


def correlation_id(run_id: str, step: dict) -> str:
    """The correlation id of a step execution (the API shows its task id; both end in the same suffix)."""
    return f"corr-{run_id}-{step['step_id']}-{step['task_id'].rsplit('-', 1)[-1]}"


def calls_for(system: System, run_id: str, step_id: str | None = None) -> list[dict]:
    """The demo agent's calls for one run (or one of its steps), from its call log."""
    marker = f"corr-{run_id}-" + (f"{step_id}-" if step_id else "")
    return [c for c in system.agent_calls() if (c.get("correlation_id") or "").startswith(marker)]


def calls_started(system: System, run_ids: list[str], step_id: str = "s1") -> bool:
    """Whether the demo agent has received a call for `step_id` of every one of `run_ids`."""
    calls = system.agent_calls()
    return all(any((c.get("correlation_id") or "").startswith(f"corr-{r}-{step_id}-") for c in calls) for r in run_ids)
