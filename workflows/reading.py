"""A definition as people read it on the admin pages: the step table's rows (what each block does,
in words), the key to the graph's colours, and the JSON with its keys in reading order."""

from collections.abc import Mapping

from workflows.graph import (
    EDGE_STYLES,
    TYPE_COLOURS,
    UNKNOWN_COLOURS,
    definition_steps,
    step_ids,
    step_order,
    step_type,
)


def _config(step: Mapping, name: str) -> Mapping:
    return step[name] if isinstance(step.get(name), Mapping) else {}


def step_details(step: Mapping) -> list[str]:
    """What a block does, in short lines for the step table (a condition, the body of a loop, ...)."""
    kind, lines = step_type(step), []
    if kind == "parallel":
        lines.append("runs " + ", ".join(step_ids(step.get("parallel_steps"))) + " at once")
        if step.get("max_parallelism"):
            lines.append(f"at most {step['max_parallelism']} at a time")
    elif kind == "conditional":
        expression = _config(step, "condition").get("expression")
        lines.append(f"if {expression}" if expression else "if (no condition)")
        lines.append(f"then {step.get('if_true_step') or '(nothing)'}, else {step.get('if_false_step') or '(nothing)'}")
    elif kind == "loop":
        config = _config(step, "loop_config")
        lines.append(
            f"for each item of {config.get('collection', '?')}: " + ", ".join(step_ids(config.get("loop_body")))
        )
        mode = config.get("execution_mode") or "sequential"
        lines.append(f"{mode}, on error {config.get('on_error') or 'stop'}")
    elif kind == "fork_join":
        config = _config(step, "fork_join_config")
        branches = config.get("branches") if isinstance(config.get("branches"), Mapping) else {}
        for name, branch in sorted(branches.items()):
            chain = step_ids(branch.get("steps")) if isinstance(branch, Mapping) else []
            lines.append(f"branch {name}: " + " \u2192 ".join(chain))
        policy = config.get("join_policy") or "all"
        lines.append(f"join: {policy}" + (f" ({config['n_required']})" if config.get("n_required") else ""))
    if step.get("timeout_seconds"):
        lines.append(f"timeout {step['timeout_seconds']} s")
    if isinstance(step.get("retry"), Mapping) and "max_retries" in step["retry"]:
        lines.append(f"up to {step['retry']['max_retries']} retries")
    return lines


def step_rows(definition) -> list[dict]:
    """One row per step for the step table, in drawing order: id, type, agent, next step ("" when
    none), the box colours of its type and what a block does (`details`, short lines)."""
    steps, rows = definition_steps(definition), []
    for key in step_order(definition):
        step = steps[key]
        agent = step.get("agent_name") if step_type(step) == "agent" else None
        following = step.get("next_step")
        fill, stroke, ink = TYPE_COLOURS.get(step_type(step), UNKNOWN_COLOURS)
        rows.append(
            {
                "id": key,
                "type": step_type(step),
                "agent": str(agent) if agent else "",
                "next": str(following) if following else "",
                "details": step_details(step),
                "fill": fill,
                "stroke": stroke,
                "ink": ink,
            }
        )
    return rows


EDGE_NAMES = {
    "next": "next step",
    "true": "if true",
    "false": "if false",
    "body": "loop body",
    "parallel": "parallel step",
    "branch": "fork-join branch",
}


def legend() -> dict[str, list[dict]]:
    """The key to the picture: box colours by step type, arrow colours by kind."""
    return {
        "types": [{"name": name, "fill": fill, "stroke": stroke} for name, (fill, stroke, _) in TYPE_COLOURS.items()],
        "edges": [
            {"name": EDGE_NAMES[kind], "colour": colour, "dashed": bool(dash)}
            for kind, (colour, dash) in EDGE_STYLES.items()
        ],
    }


def definition_for_reading(definition):
    """The definition with its keys in reading order (the format's top-level order, steps in drawing
    order, each step's id, type and agent first): the database's JSON keeps keys in its own order."""
    if not isinstance(definition, Mapping):
        return definition
    top = ("name", "description", "start_step", "input_schema", "steps")
    ordered = {key: definition[key] for key in top if key in definition}
    ordered |= {key: value for key, value in definition.items() if key not in ordered}
    steps = definition_steps(definition)
    if steps and len(steps) == len(definition["steps"]):
        first = ("id", "type", "agent_name", "next_step")
        ordered["steps"] = {
            key: {name: steps[key][name] for name in first if name in steps[key]} | dict(steps[key])
            for key in step_order(definition)
        }
    return ordered
