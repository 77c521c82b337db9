"""Validation of workflow definitions (workflow-format.md, "Validation on save").

``validate_definition`` reports every problem at once as ``Issue(field, message, type)``; ``field``
is a dotted path into the definition (``steps.step-2.next_step``, ``input_schema.properties.a``;
``""`` is the definition itself). Unknown keys are ignored so older files import unchanged, except
inside the new ``retry`` object. Issue types: required, invalid_type, invalid, unknown_step,
unknown_agent, deleted_agent, multiple_parents, cycle, unreachable, invalid_reference,
unavailable_reference, invalid_expression, invalid_schema.

Structure. The main chain starts at ``start_step`` and follows ``next_step``. A block owns child
chains: every parallel step and every conditional branch step is a chain of one, the loop body is
one chain and every fork-join branch is one chain, in list order. The executor ignores the
``next_step`` of a step inside a block (the spec says so for parallel steps; every block is treated
alike), so each step has exactly one place, in the main chain or in one block; listing a step in
two blocks, or in a block and in the main chain, is an error.

Visibility of ``${<step>.output}`` (a step T is guaranteed to have finished before S starts):
- T is earlier than S in the same chain: the main chain, a loop body (same iteration) or one
  fork-join branch. Parallel siblings and the branches of one block never see each other.
- A block's children see everything their block sees, but not the block itself (still running).
- A finished block exports its own output, and its children's outputs only when all of them are
  sure to have run: a parallel block, or a fork-join whose join_policy is ``all``. A conditional
  (either branch may be skipped), a loop (body outputs are per iteration) and a fork-join with
  any/majority/n_of_m export only themselves; use the block's output instead.
- References guarded by ``exists(...)`` in conditions need only name an existing step: probing for
  a step that may not have run is the purpose of ``exists``.
- ``${loop...}`` is allowed only in a step inside a loop body (at any depth); ``${workflow.input...}``
  anywhere. A block's own fields (condition, collection) are evaluated at the block's position.

Every graph walk uses explicit stacks or queues, so 1,000-step definitions cannot hit the
recursion limit.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from jsonschema.validators import Draft202012Validator, validator_for

from workflows.definition.expressions import (
    ExpressionError,
    ExpressionSyntaxError,
    evaluate,
    literal_comparisons,
    parse_expression,
    references_in,
)
from workflows.definition.graph import GraphChecks
from workflows.definition.references import (
    STEP_ID_RE,
    Reference,
    ReferenceSyntaxError,
    iter_strings,
    json_type,
    parse_reference,
    split_template,
)

STEP_TYPES = ("agent", "parallel", "conditional", "loop", "fork_join")
JOIN_POLICIES = ("all", "any", "majority", "n_of_m")
EXECUTION_MODES = ("sequential", "parallel")
ON_ERROR = ("stop", "continue", "collect")
RETRY_FIELDS = ("max_retries", "initial_delay_ms", "backoff_multiplier", "max_delay_ms")
# Upper bounds of the format's numbers (workflow-format.md), so nothing overflows a column or a timer.
MAX_TIMEOUT_SECONDS = 86_400
MAX_INPUT_TIMEOUT_SECONDS = 2_592_000  # 30 days: how long a step may wait for a person
MAX_DELAY_MS = 86_400_000
MAX_COUNT = 10_000


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_KINDS = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "int": (_is_int, "an integer"),
    "number": (lambda v: _is_int(v) or isinstance(v, float) and math.isfinite(v), "a number"),
    "object": (lambda v: isinstance(v, Mapping), "an object"),
    "array": (lambda v: isinstance(v, list), "an array"),
}


@dataclass(frozen=True)
class Issue:
    field: str
    message: str
    type: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


@functools.cache
def _meta_validator() -> Any:
    # What Draft202012Validator.check_schema does, but keeping every error rather than the first.
    validator_class = validator_for(Draft202012Validator.META_SCHEMA, default=Draft202012Validator)
    return validator_class(Draft202012Validator.META_SCHEMA, format_checker=validator_class.FORMAT_CHECKER)


class _Checker(GraphChecks):
    def __init__(self, definition: Mapping, agents: Mapping[str, str] | None):
        self.issues: list[Issue] = []
        self.agents = agents
        self.ids: set[str] = set()
        self.types: dict[str, str] = {}
        self.next: dict[str, tuple[str, str]] = {}  # step -> (target, field)
        self.chains: dict[str, list[list[tuple[str, str]]]] = {}  # block -> chains of (child, field)
        self.exporting: set[str] = set()
        self.refs: list[tuple[str, str, Reference, bool]] = []  # (step, field, reference, must be visible)
        self.check_top(definition)

    def add(self, field: str, message: str, type_: str = "invalid") -> None:
        self.issues.append(Issue(field, message, type_))

    def value(self, obj: Mapping, key: str, path: str, kind: str, *, required=False, choices=(), **limits) -> Any:
        """obj[key] when it is valid, else None after recording why; null counts as absent.

        limits: positive=True, low=<minimum>, high=<maximum>.
        """
        value, where = obj.get(key), _join(path, key)
        low, high, positive = limits.get("low"), limits.get("high"), limits.get("positive", False)
        if value is None:
            if required:
                self.add(where, f"'{key}' is required", "required")
            return None
        accepts, name = _KINDS[kind]
        if not accepts(value):
            self.add(where, f"Must be {name}, got {json_type(value)}", "invalid_type")
        elif kind == "string" and required and not value.strip():
            self.add(where, "Must not be empty")
        elif choices and value not in choices:
            self.add(where, f"Must be one of {', '.join(choices)}; got {value!r}")
        elif positive and value <= 0:
            self.add(where, f"Must be positive; got {value}")
        elif low is not None and value < low:
            self.add(where, f"Must be at least {low}; got {value}")
        elif high is not None and value > high:
            self.add(where, f"Must be at most {high}; got {value}")
        else:
            return value
        return None

    def step_id(self, value: Any, where: str, owner: str) -> str | None:
        if not isinstance(value, str):
            self.add(where, f"Must be a step id, got {json_type(value)}", "invalid_type")
        elif value not in self.ids:
            self.add(where, f"Unknown step '{value}'", "unknown_step")
        elif value == owner:
            self.add(where, f"Cycle: {owner} -> {owner}", "cycle")
        else:
            return value
        return None

    def step_list(self, obj: Mapping, key: str, path: str, owner: str, minimum: int) -> list[tuple[str, str]]:
        items = self.value(obj, key, path, "array", required=True) or []
        if isinstance(obj.get(key), list) and len(items) < minimum:
            self.add(_join(path, key), f"Needs at least {minimum} step{'s' if minimum > 1 else ''}")
        result, seen = [], set()
        for index, item in enumerate(items):
            where = f"{path}.{key}.{index}"
            if (child := self.step_id(item, where, owner)) is None:
                continue
            if child in seen:
                self.add(where, f"Step '{child}' is listed twice", "multiple_parents")
                continue
            seen.add(child)
            result.append((child, where))
        return result

    def check_top(self, definition: Mapping) -> None:
        name = self.value(definition, "name", "", "string", required=True)
        if name is not None and len(name) > 255:
            self.add("name", f"Must be at most 255 characters; got {len(name)}")
        self.value(definition, "description", "", "string")
        steps = self.value(definition, "steps", "", "object", required=True) or {}
        if "steps" in definition and isinstance(definition["steps"], Mapping) and not steps:
            self.add("steps", "A workflow needs at least one step", "required")
        self.ids = set(steps)
        self.start = self.value(definition, "start_step", "", "string", required=True)
        if self.start is not None and self.start not in self.ids:
            self.add("start_step", f"Unknown step '{self.start}'", "unknown_step")
            self.start = None
        if definition.get("input_schema") is not None:
            self.check_schema(definition["input_schema"])
        for key, step in steps.items():
            if not STEP_ID_RE.fullmatch(key):
                self.add(f"steps.{key}", f"Step id '{key}' must be 1-100 characters among A-Z a-z 0-9 _ -")
            if not isinstance(step, Mapping):
                self.add(f"steps.{key}", f"A step must be an object, got {json_type(step)}", "invalid_type")
            else:
                self.check_step(key, step, f"steps.{key}")
        self.order = list(steps)
        self.check_graph()

    def check_schema(self, schema: Any) -> None:
        if not isinstance(schema, Mapping | bool):
            self.add("input_schema", f"Must be a JSON Schema object, got {json_type(schema)}", "invalid_type")
            return
        for error in _meta_validator().iter_errors(schema):
            self.add(".".join(map(str, ["input_schema", *error.absolute_path])), error.message, "invalid_schema")

    def check_step(self, key: str, step: Mapping, path: str) -> None:
        if "id" not in step:
            self.add(f"{path}.id", "'id' is required", "required")
        elif step["id"] != key:
            self.add(f"{path}.id", f"The id {step['id']!r} does not match the step's key '{key}'")
        step_type = "agent" if step.get("type") is None else step["type"]
        if step_type not in STEP_TYPES:
            self.add(f"{path}.type", f"Unknown step type {step_type!r}; expected one of {', '.join(STEP_TYPES)}")
        if step.get("next_step") is not None:
            if (target := self.step_id(step["next_step"], f"{path}.next_step", key)) is not None:
                self.next[key] = (target, f"{path}.next_step")
        self.value(step, "timeout_seconds", path, "number", positive=True, high=MAX_TIMEOUT_SECONDS)
        self.value(step, "input_timeout_seconds", path, "int", low=1, high=MAX_INPUT_TIMEOUT_SECONDS)
        if (retry := self.value(step, "retry", path, "object")) is not None:
            for unknown in sorted(set(retry) - set(RETRY_FIELDS)):
                self.add(f"{path}.retry.{unknown}", f"Unknown field; expected {', '.join(RETRY_FIELDS)}")
            self.value(retry, "max_retries", f"{path}.retry", "int", low=0, high=10)
            self.value(retry, "initial_delay_ms", f"{path}.retry", "number", low=0, high=MAX_DELAY_MS)
            self.value(retry, "backoff_multiplier", f"{path}.retry", "number", low=1, high=10)
            self.value(retry, "max_delay_ms", f"{path}.retry", "number", low=0, high=MAX_DELAY_MS)
        if step_type in STEP_TYPES:
            self.types[key] = step_type
            getattr(self, f"check_{step_type}")(key, step, path)

    def check_agent(self, key: str, step: Mapping, path: str) -> None:
        name = self.value(step, "agent_name", path, "string", required=True)
        if name is not None and self.agents is not None:
            if name not in self.agents:
                self.add(f"{path}.agent_name", f"Unknown agent '{name}'", "unknown_agent")
            elif self.agents[name] == "deleted":
                self.add(f"{path}.agent_name", f"Agent '{name}' is deleted", "deleted_agent")
        mapping = self.value(step, "input_mapping", path, "object")
        for where, text in iter_strings(mapping or {}, ()):
            field = ".".join(map(str, [f"{path}.input_mapping", *where]))
            try:
                parts = split_template(text)
            except ReferenceSyntaxError as error:
                self.add(field, str(error), "invalid_reference")
                continue
            self.refs.extend((key, field, part, True) for part in parts if isinstance(part, Reference))

    def check_parallel(self, key: str, step: Mapping, path: str) -> None:
        self.chains[key] = [[child] for child in self.step_list(step, "parallel_steps", path, key, 2)]
        self.exporting.add(key)
        self.value(step, "max_parallelism", path, "int", positive=True, high=MAX_COUNT)

    def check_conditional(self, key: str, step: Mapping, path: str) -> None:
        if (condition := self.value(step, "condition", path, "object", required=True)) is not None:
            field = f"{path}.condition.expression"
            if text := self.value(condition, "expression", f"{path}.condition", "string", required=True):
                try:
                    expr = parse_expression(text)
                except ExpressionSyntaxError as error:
                    self.add(field, str(error), "invalid_expression")
                else:
                    if mismatch := literal_mismatch(expr):
                        self.add(field, mismatch, "invalid_expression")
                    needed = set(references_in(expr, include_exists=False))
                    self.refs.extend((key, field, ref, ref in needed) for ref in references_in(expr))
        chains = []
        for branch in ("if_true_step", "if_false_step"):
            if step.get(branch) is not None and (child := self.step_id(step[branch], f"{path}.{branch}", key)):
                if not chains or chains[0][0][0] != child:
                    chains.append([(child, f"{path}.{branch}")])
        if step.get("if_true_step") is None and step.get("if_false_step") is None:
            self.add(f"{path}.if_true_step", "A conditional needs if_true_step or if_false_step", "required")
        self.chains[key] = chains

    def check_loop(self, key: str, step: Mapping, path: str) -> None:
        if (config := self.value(step, "loop_config", path, "object", required=True)) is None:
            return
        where = f"{path}.loop_config"
        if collection := self.value(config, "collection", where, "string", required=True):
            try:
                self.refs.append((key, f"{where}.collection", parse_reference(collection), True))
            except ReferenceSyntaxError as error:
                self.add(f"{where}.collection", f"Must be one reference to a list: {error}", "invalid_reference")
        self.chains[key] = [self.step_list(config, "loop_body", where, key, 1)]
        self.value(config, "execution_mode", where, "string", choices=EXECUTION_MODES)
        self.value(config, "on_error", where, "string", choices=ON_ERROR)
        self.value(config, "max_parallelism", where, "int", positive=True, high=MAX_COUNT)
        self.value(config, "max_iterations", where, "int", positive=True, high=MAX_COUNT)

    def check_fork_join(self, key: str, step: Mapping, path: str) -> None:
        if (config := self.value(step, "fork_join_config", path, "object", required=True)) is None:
            return
        where = f"{path}.fork_join_config"
        branches = self.value(config, "branches", where, "object", required=True)
        if branches is not None and len(branches) < 2:
            self.add(f"{where}.branches", f"A fork-join needs at least 2 branches; got {len(branches)}")
        self.chains[key] = []
        for name, branch in (branches or {}).items():
            if not isinstance(branch, Mapping):
                self.add(f"{where}.branches.{name}", f"Must be an object, got {json_type(branch)}", "invalid_type")
                continue
            self.chains[key].append(self.step_list(branch, "steps", f"{where}.branches.{name}", key, 1))
            self.value(
                branch, "timeout_seconds", f"{where}.branches.{name}", "number", positive=True, high=MAX_TIMEOUT_SECONDS
            )
        policy = self.value(config, "join_policy", where, "string", choices=JOIN_POLICIES)
        if config.get("join_policy", "all") == "all":
            self.exporting.add(key)
        required = self.value(config, "n_required", where, "int", required=policy == "n_of_m", low=1)
        if required is not None and branches is not None and required > len(branches):
            self.add(f"{where}.n_required", f"n_required ({required}) exceeds the number of branches ({len(branches)})")
        self.value(config, "branch_timeout_seconds", where, "number", positive=True, high=MAX_TIMEOUT_SECONDS)


def validate_definition(definition: Any, *, agents: Mapping[str, str] | None = None) -> list[Issue]:
    """Every problem in a definition; agents maps agent name -> status and enables the agent checks."""
    if not isinstance(definition, Mapping):
        return [Issue("", f"A workflow definition must be a JSON object, got {json_type(definition)}", "invalid_type")]
    return _Checker(definition, agents).issues


def literal_mismatch(expr) -> str | None:
    """A comparison of two literals that can never be evaluated (`'high' > 5`): known at save time."""
    for comparison in literal_comparisons(expr):
        try:
            evaluate(comparison, lambda reference: None)
        except ExpressionError as error:
            return str(error)
    return None
