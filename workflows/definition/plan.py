"""The plan: a definition normalised the way it is stored and sent to the executor."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from workflows.definition.references import parse_reference

_DEFAULTS = {
    "agent": {"input_mapping": {}},
    "parallel": {"max_parallelism": None},
    "conditional": {"if_true_step": None, "if_false_step": None},
    "loop": {},
    "fork_join": {},
}
_CONFIG_DEFAULTS = {
    "loop_config": {
        "execution_mode": "sequential",
        "on_error": "stop",
        "max_parallelism": None,
        "max_iterations": None,
    },
    "fork_join_config": {"join_policy": "all", "n_required": None, "branch_timeout_seconds": None},
}


def _fill(obj: dict, defaults: Mapping[str, Any]) -> None:
    for key, default in defaults.items():
        if obj.get(key) is None:
            obj[key] = copy.deepcopy(default)


def plan_from_definition(definition: Mapping) -> dict:
    """The normalised definition the executor runs: defaults filled in, workflow_id and version dropped.

    Expects a definition that validate_definition accepted; collections become ``${...}`` references.
    """
    keys = ("name", "description", "start_step", "input_schema")
    plan = {key: copy.deepcopy(definition[key]) for key in keys if definition.get(key) is not None}
    plan["steps"] = {}
    for key, original in definition["steps"].items():
        step = copy.deepcopy(dict(original))
        step["type"] = step.get("type") or "agent"
        _fill(step, {"next_step": None, "timeout_seconds": None, "retry": None, **_DEFAULTS[step["type"]]})
        for config, defaults in _CONFIG_DEFAULTS.items():
            if isinstance(step.get(config), dict):
                _fill(step[config], defaults)
        if step["type"] == "loop":
            step["loop_config"]["collection"] = parse_reference(step["loop_config"]["collection"]).text
        if step["type"] == "fork_join":
            for branch in step["fork_join_config"]["branches"].values():
                _fill(branch, {"timeout_seconds": None})
        plan["steps"][key] = step
    return plan
