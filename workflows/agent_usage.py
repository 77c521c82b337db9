"""Which workflows use an agent: the agents admin page's "Used by" (agents know nothing of workflows, so
this layer answers and registers itself there, from workflows/admin.py)."""

from django.urls import reverse

from workflows.models import Workflow


def _names_agent(definition, name: str) -> bool:
    # Every step, top-level or inside a block (loop bodies, branches), is in the flat `steps` map.
    steps = definition.get("steps") if isinstance(definition, dict) else None
    return any(
        isinstance(step, dict) and step.get("agent_name") == name
        for step in (steps.values() if isinstance(steps, dict) else [])
    )


def workflows_using(agent) -> list[tuple[str, str]]:
    """[(label, admin URL)] of the live workflows whose current (latest) definition names the agent; one query."""
    found = Workflow.objects.live().order_by("name").only("id", "name", "version", "definition")
    # Narrowed in the database by the name as text: only when it is stored as typed (SQLite's JSON text
    # escapes non-ASCII characters and quotes), else every live workflow is read.
    if agent.name.isascii() and agent.name.isprintable() and not set(agent.name) & {'"', "\\"}:
        found = found.filter(definition__icontains=agent.name)
    return [
        (f"{workflow.name} v{workflow.version}", reverse("admin:workflows_workflow_change", args=[workflow.pk]))
        for workflow in found
        if _names_agent(workflow.definition, agent.name)
    ]
