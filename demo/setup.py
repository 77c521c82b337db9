"""What the one-command quick start sets up: the demo agent's skills as agents, a sample workflow, and
the workflows of examples/ (one per step type, and a mixed one)."""

import json
import uuid
from pathlib import Path

from django.conf import settings

from agents.models import Agent
from agents.services import agent_create, agent_update
from workflows.models import Workflow
from workflows.services import workflow_create, workflow_import

# Agent `demo-<name>` at `<agent url>/<name>`; the `-stream` ones have a streaming card (followed by SubscribeToTask).
DEMO_SKILLS = ("echo", "uppercase", "word_count", "fail", "slow", "think", "ask", "think-stream", "ask-stream")
EXAMPLES_DIR = Path(settings.BASE_DIR) / "examples"
# A fixed id, so the README can show one command that runs the sample.
SAMPLE_WORKFLOW_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
SAMPLE_WORKFLOW = {
    "name": "demo-shout-and-count",
    "description": "Upper-cases a text with one agent, then counts its words with another.",
    "start_step": "shout",
    "input_schema": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
    "steps": {
        "shout": {
            "id": "shout",
            "agent_name": "demo-uppercase",
            "input_mapping": {"text": "${workflow.input.text}"},
            "next_step": "count",
        },
        "count": {"id": "count", "agent_name": "demo-word_count", "input_mapping": {"text": "${shout.output.text}"}},
    },
}


def demo_setup(*, user, agent_url: str) -> Workflow:
    """Registers (or re-points) one agent per demo skill and creates the sample workflow once."""
    base = agent_url.rstrip("/")
    for skill in DEMO_SKILLS:
        name, url = f"demo-{skill}", f"{base}/{skill}"
        agent = Agent.objects.live().filter(name=name).first()
        if agent is None:
            agent_create(user=user, data={"name": name, "url": url, "description": f"Demo agent skill '{skill}'."})
        elif agent.url != url:
            agent_update(agent=agent, user=user, data={"url": url})
    workflow = Workflow.objects.filter(pk=SAMPLE_WORKFLOW_ID).first()
    if workflow is None:
        workflow = workflow_create(user=user, definition=SAMPLE_WORKFLOW, workflow_id=SAMPLE_WORKFLOW_ID)
    return workflow


def examples_import(*, user) -> list[tuple[Workflow, dict]]:
    """Imports (or updates) every workflow of examples/; returns each with its sample input."""
    imported = []
    for path in sorted(EXAMPLES_DIR.glob("*.json")):
        workflow, _ = workflow_import(user=user, document=json.loads(path.read_text()))
        sample = EXAMPLES_DIR / "inputs" / path.name
        imported.append((workflow, json.loads(sample.read_text()) if sample.is_file() else {}))
    return imported
