"""Building workflows and runs for the run tests."""

from tests.factories import AgentFactory
from workflows.services import workflow_create


def chain(*agents: str, name: str = "chain", input_schema=None, **step_overrides) -> dict:
    """A definition whose steps s1, s2, ... call the given agents in order, each passing `text` on."""
    steps = {}
    for index, agent in enumerate(agents, start=1):
        source = "${workflow.input.text}" if index == 1 else f"${{s{index - 1}.output.text}}"
        steps[f"s{index}"] = {
            "id": f"s{index}",
            "agent_name": agent,
            "input_mapping": {"text": source},
            "next_step": f"s{index + 1}" if index < len(agents) else None,
            **step_overrides.get(f"s{index}", {}),
        }
    body = {"name": name, "start_step": "s1", "steps": steps}
    if input_schema is not None:
        body["input_schema"] = input_schema
    return body


def workflow_with_agents(*agents: str, url: str = "http://127.0.0.1:1/", **kwargs):
    for agent in dict.fromkeys(agents):
        AgentFactory(name=agent, url=url)
    return workflow_create(user=None, definition=chain(*agents, **kwargs))
