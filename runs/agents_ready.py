"""Before a run is created: every agent its plan can call must exist and be active, or execute is a 409
that names them (instead of a run that fails later at the first such step)."""

from agents.choices import AgentStatus
from core.errors import Conflict
from workflows.services import agent_statuses


def plan_agent_steps(plan: dict) -> dict[str, list[str]]:
    """{agent name: [step ids]} for every agent step reachable from the start step, through next_step
    and into every block: parallel children, both conditional branches, loop bodies, fork-join branches."""
    steps = plan.get("steps") or {}
    found: dict[str, list[str]] = {}
    seen: set[str] = set()
    todo = [plan.get("start_step")]
    while todo:
        step_id = todo.pop()
        step = steps.get(step_id) if isinstance(step_id, str) else None
        if not isinstance(step, dict) or step_id in seen:
            continue
        seen.add(step_id)
        kind = step.get("type") or "agent"
        if kind == "agent" and isinstance(step.get("agent_name"), str):
            found.setdefault(step["agent_name"], []).append(step_id)
        todo.append(step.get("next_step"))
        todo.extend(step.get("parallel_steps") or [])
        todo.extend([step.get("if_true_step"), step.get("if_false_step")])
        todo.extend((step.get("loop_config") or {}).get("loop_body") or [])
        for branch in ((step.get("fork_join_config") or {}).get("branches") or {}).values():
            todo.extend((branch.get("steps") or []) if isinstance(branch, dict) else [])
    return found


def agents_ready_check(plan: dict, *, workflow_name: str) -> None:
    """Raises Conflict naming each agent of the plan that is deleted, missing or inactive."""
    used = plan_agent_steps(plan)
    statuses = agent_statuses({"steps": {name: {"agent_name": name} for name in used}})
    problems = []
    for name in sorted(used):
        status = statuses.get(name)
        if status == AgentStatus.ACTIVE:
            continue
        state = "does not exist" if status is None else f"is {status}"
        where = ", ".join(sorted(used[name]))
        problems.append(f"agent {name!r} {state} (step{'s' if len(used[name]) > 1 else ''} {where})")
    if problems:
        raise Conflict(
            f"Workflow {workflow_name!r} cannot run: " + "; ".join(problems) + ". Activate or replace them first."
        )
