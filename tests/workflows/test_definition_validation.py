"""Validation of workflow definitions and the plan built from them (pure Python, no database)."""

import copy
import time

import pytest

from workflows.definition.plan import plan_from_definition
from workflows.definition.validation import Issue, validate_definition

SPEC_EXAMPLE = {
    "name": "research-and-write",
    "description": "optional",
    "start_step": "step-1",
    "input_schema": {"type": "object", "required": ["topic"], "properties": {"topic": {"type": "string"}}},
    "steps": {
        "step-1": {
            "id": "step-1",
            "type": "agent",
            "agent_name": "ResearchAgent",
            "input_mapping": {"topic": "${workflow.input.topic}"},
            "next_step": "step-2",
        },
        "step-2": {
            "id": "step-2",
            "agent_name": "WriterAgent",
            "input_mapping": {"research": "${step-1.output.findings}", "tone": "formal"},
            "next_step": None,
        },
    },
}


def agent(step_id, next_step=None, **fields):
    return {"id": step_id, "agent_name": "A", "input_mapping": {}, "next_step": next_step, **fields}


def block(step_id, type_, next_step=None, **fields):
    return {"id": step_id, "type": type_, "next_step": next_step, **fields}


def parallel(step_id, children, next_step=None, **fields):
    return block(step_id, "parallel", next_step, parallel_steps=children, **fields)


def conditional(step_id, expression, if_true, if_false=None, next_step=None):
    fields = {"condition": {"expression": expression}, "if_true_step": if_true, "if_false_step": if_false}
    return block(step_id, "conditional", next_step, **fields)


def loop(step_id, body, collection="${workflow.input.items}", next_step=None, **config):
    return block(step_id, "loop", next_step, loop_config={"collection": collection, "loop_body": body, **config})


def fork_join(step_id, branches, next_step=None, **config):
    config = {"branches": {name: {"steps": steps} for name, steps in branches.items()}, **config}
    return block(step_id, "fork_join", next_step, fork_join_config=config)


def workflow(*steps, start=None, **top):
    return {"name": "wf", "start_step": start or steps[0]["id"], "steps": {s["id"]: s for s in steps}, **top}


def problems(definition, **kwargs):
    return {(issue.field, issue.type) for issue in validate_definition(definition, **kwargs)}


def messages(definition, **kwargs):
    return {issue.field: issue.message for issue in validate_definition(definition, **kwargs)}


def refers(step_id, reference, next_step=None):
    return agent(step_id, next_step, input_mapping={"x": reference})


# --- valid definitions ---------------------------------------------------------------------------


def test_the_spec_example_is_valid():
    assert validate_definition(SPEC_EXAMPLE) == []
    agents = {"ResearchAgent": "active", "WriterAgent": "inactive"}
    assert validate_definition(SPEC_EXAMPLE, agents=agents) == []


def test_older_files_with_workflow_id_and_version_are_accepted():
    assert validate_definition({**SPEC_EXAMPLE, "workflow_id": "wf-123", "version": "1.0"}) == []


VALID = {
    "agent": workflow(agent("a", "b", timeout_seconds=2.5), refers("b", "${a.output.text} and ${workflow.input}")),
    "parallel": workflow(
        parallel("p", ["a", "b"], "c", max_parallelism=2),
        refers("a", "${workflow.input.x}"),
        agent("b"),
        agent("c", input_mapping={"both": ["${a.output}", "${b.output}", "${p.output.a}"]}),
    ),
    "conditional": workflow(
        agent("first", "c"),
        conditional("c", "${first.output.score} > 0.5 and exists(${first.output.extra})", "yes", "no", "after"),
        refers("yes", "${first.output}"),
        agent("no"),
        refers("after", "${c.output.branch_output}"),
    ),
    "conditional_one_branch": workflow(conditional("c", "true", None, "no"), agent("no")),
    "loop": workflow(
        agent("fetch", "l"),
        loop("l", ["b1", "b2"], "${fetch.output.items}", "after", execution_mode="parallel", max_parallelism=4),
        refers("b1", "${loop.item.url} ${loop.index}/${loop.total} ${loop.is_first} ${loop.is_last} ${fetch.output}"),
        refers("b2", "${b1.output.summary}"),
        refers("after", "${l.output.iterations}"),
    ),
    "fork_join": workflow(
        fork_join("fj", {"left": ["l1", "l2"], "right": ["r1"]}, "after", join_policy="all", branch_timeout_seconds=9),
        agent("l1"),
        refers("l2", "${l1.output}"),
        agent("r1"),
        agent("after", input_mapping={"a": "${l2.output}", "b": "${r1.output}", "c": "${fj.output.left}"}),
    ),
    "fork_join_n_of_m": workflow(
        fork_join("fj", {"a": ["x"], "b": ["y"], "c": ["z"]}, join_policy="n_of_m", n_required=2),
        agent("x"),
        agent("y"),
        agent("z"),
    ),
    "nested": workflow(
        loop("outer", ["p"], "${workflow.input.groups}"),
        parallel("p", ["inner", "solo"]),
        loop("inner", ["deep"], "${loop.item.members}"),
        refers("deep", "${loop.item}"),
        agent("solo"),
    ),
    "retry": workflow(
        agent("a", retry={"max_retries": 10, "initial_delay_ms": 0, "backoff_multiplier": 1, "max_delay_ms": 5000})
    ),
    "bare_collection": workflow(agent("a", "l"), loop("l", ["b"], "a.output.items"), agent("b")),
    "step_type_null": workflow({"id": "a", "type": None, "agent_name": "A"}),
    "escaped_template": workflow(
        agent("a", input_mapping={"text": "literal $${not.a.reference}", "n": [1, {"m": None}]})
    ),
    "boolean_schema": workflow(agent("a"), input_schema=True),
}


@pytest.mark.parametrize("name", VALID)
def test_a_valid_example_of_every_step_type(name):
    assert validate_definition(VALID[name]) == []


# --- top level -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("definition", "kind"), [(None, "null"), ([], "array"), ("steps", "string"), (3, "number")])
def test_the_definition_must_be_an_object(definition, kind):
    assert validate_definition(definition) == [
        Issue("", f"A workflow definition must be a JSON object, got {kind}", "invalid_type")
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": None}, ("name", "required")),
        ({"name": ""}, ("name", "invalid")),
        ({"name": "  "}, ("name", "invalid")),
        ({"name": 5}, ("name", "invalid_type")),
        ({"name": "x" * 256}, ("name", "invalid")),
        ({"description": ["x"]}, ("description", "invalid_type")),
        ({"start_step": None}, ("start_step", "required")),
        ({"start_step": "nope"}, ("start_step", "unknown_step")),
        ({"start_step": 1}, ("start_step", "invalid_type")),
        ({"input_schema": "object"}, ("input_schema", "invalid_type")),
        ({"input_schema": {"type": "strin"}}, ("input_schema.type", "invalid_schema")),
        (
            {"input_schema": {"properties": {"topic": {"type": 5}}}},
            ("input_schema.properties.topic.type", "invalid_schema"),
        ),
        ({"input_schema": {"required": "topic"}}, ("input_schema.required", "invalid_schema")),
        ({"input_schema": {"minProperties": -1}}, ("input_schema.minProperties", "invalid_schema")),
    ],
)
def test_top_level_fields(change, expected):
    definition = {**SPEC_EXAMPLE, **change}
    assert problems(definition) == {expected}


def test_missing_name_and_empty_steps():
    assert problems({"steps": {}, "start_step": "a"}) == {
        ("name", "required"),
        ("steps", "required"),
        ("start_step", "unknown_step"),
    }
    assert ("steps", "invalid_type") in problems({"name": "x", "start_step": "a", "steps": ["a"]})
    assert ("steps", "required") in problems({"name": "x", "start_step": "a"})


def test_name_of_255_characters_and_null_schema_and_description_are_fine():
    assert validate_definition({**SPEC_EXAMPLE, "name": "x" * 255, "input_schema": None, "description": None}) == []


def test_schema_errors_are_all_reported_with_their_paths():
    schema = {"type": "object", "properties": {"a": {"type": "strin"}, "b": {"minLength": "x"}}}
    assert problems({**SPEC_EXAMPLE, "input_schema": schema}) == {
        ("input_schema.properties.a.type", "invalid_schema"),
        ("input_schema.properties.b.minLength", "invalid_schema"),
    }


# --- steps: ids, types, common fields -----------------------------------------------------------


def test_step_keys_and_ids():
    steps = {"bad id": agent("bad id"), "a": agent("b"), "c" * 101: agent("c" * 101), "d": {"agent_name": "A"}}
    definition = {"name": "x", "start_step": "a", "steps": steps}
    assert problems(definition) >= {
        ("steps.bad id", "invalid"),
        ("steps.a.id", "invalid"),
        ("steps." + "c" * 101, "invalid"),
        ("steps.d.id", "required"),
    }
    assert messages(definition)["steps.a.id"] == "The id 'b' does not match the step's key 'a'"


def test_a_step_must_be_an_object():
    definition = workflow(agent("a", "b"))
    definition["steps"]["b"] = "agent"
    assert problems(definition) == {("steps.b", "invalid_type")}


def test_unknown_step_type():
    definition = workflow(block("a", "subflow"))
    assert problems(definition) == {("steps.a.type", "invalid")}
    assert "Unknown step type 'subflow'" in messages(definition)["steps.a.type"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"agent_name": None}, ("steps.a.agent_name", "required")),
        ({"agent_name": ""}, ("steps.a.agent_name", "invalid")),
        ({"agent_name": 3}, ("steps.a.agent_name", "invalid_type")),
        ({"input_mapping": "x"}, ("steps.a.input_mapping", "invalid_type")),
        ({"input_mapping": {"a": ["ok", "${broken"]}}, ("steps.a.input_mapping.a.1", "invalid_reference")),
        ({"input_mapping": {"a": {"b": "${nope}"}}}, ("steps.a.input_mapping.a.b", "invalid_reference")),
        ({"next_step": "ghost"}, ("steps.a.next_step", "unknown_step")),
        ({"next_step": 7}, ("steps.a.next_step", "invalid_type")),
        ({"next_step": "a"}, ("steps.a.next_step", "cycle")),
        ({"timeout_seconds": 0}, ("steps.a.timeout_seconds", "invalid")),
        ({"timeout_seconds": -1}, ("steps.a.timeout_seconds", "invalid")),
        ({"timeout_seconds": "5"}, ("steps.a.timeout_seconds", "invalid_type")),
        ({"timeout_seconds": True}, ("steps.a.timeout_seconds", "invalid_type")),
        ({"timeout_seconds": float("inf")}, ("steps.a.timeout_seconds", "invalid_type")),
        ({"retry": 3}, ("steps.a.retry", "invalid_type")),
        ({"retry": {"max_retries": 11}}, ("steps.a.retry.max_retries", "invalid")),
        ({"retry": {"max_retries": -1}}, ("steps.a.retry.max_retries", "invalid")),
        ({"retry": {"max_retries": 1.5}}, ("steps.a.retry.max_retries", "invalid_type")),
        ({"retry": {"initial_delay_ms": -1}}, ("steps.a.retry.initial_delay_ms", "invalid")),
        ({"retry": {"backoff_multiplier": 0.5}}, ("steps.a.retry.backoff_multiplier", "invalid")),
        ({"retry": {"max_delay_ms": -5}}, ("steps.a.retry.max_delay_ms", "invalid")),
        ({"retry": {"max_retries": 1, "jitter": True}}, ("steps.a.retry.jitter", "invalid")),
    ],
)
def test_agent_step_fields(fields, expected):
    assert problems(workflow(agent("a", **fields))) == {expected}


def test_agent_step_without_input_mapping_is_fine():
    assert validate_definition(workflow({"id": "a", "agent_name": "A"})) == []


def test_agents_unknown_deleted_inactive():
    definition = workflow(agent("a", "b", agent_name="Gone"), agent("b", "c", agent_name="Old"), agent("c"))
    issues = validate_definition(definition, agents={"Old": "deleted", "A": "inactive"})
    assert issues == [
        Issue("steps.a.agent_name", "Unknown agent 'Gone'", "unknown_agent"),
        Issue("steps.b.agent_name", "Agent 'Old' is deleted", "deleted_agent"),
    ]
    assert validate_definition(definition) == []  # without a registry, agent names are not checked


# --- block types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (parallel("p", ["a"]), {("steps.p.parallel_steps", "invalid")}),
        (parallel("p", "a,b"), {("steps.p.parallel_steps", "invalid_type")}),
        (block("p", "parallel"), {("steps.p.parallel_steps", "required")}),
        (parallel("p", ["a", "ghost"]), {("steps.p.parallel_steps.1", "unknown_step")}),
        (parallel("p", ["a", 2]), {("steps.p.parallel_steps.1", "invalid_type")}),
        (parallel("p", ["a", "a"]), {("steps.p.parallel_steps.1", "multiple_parents")}),
        (parallel("p", ["a", "p"]), {("steps.p.parallel_steps.1", "cycle")}),
        (parallel("p", ["a", "b"], max_parallelism=0), {("steps.p.max_parallelism", "invalid")}),
        (parallel("p", ["a", "b"], max_parallelism=1.5), {("steps.p.max_parallelism", "invalid_type")}),
    ],
)
def test_parallel_rules(step, expected):
    found = problems(workflow(step, agent("a"), agent("b")))
    assert expected <= found
    assert found - expected <= {("steps.b", "unreachable"), ("steps.a", "unreachable")}


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (block("c", "conditional", if_true_step="a"), ("steps.c.condition", "required")),
        (block("c", "conditional", condition="x > 1", if_true_step="a"), ("steps.c.condition", "invalid_type")),
        (block("c", "conditional", condition={}, if_true_step="a"), ("steps.c.condition.expression", "required")),
        (conditional("c", "${a.output} >", "a"), ("steps.c.condition.expression", "invalid_expression")),
        (conditional("c", "__import__('os')", "a"), ("steps.c.condition.expression", "invalid_expression")),
        (conditional("c", "'high' > 5", "a"), ("steps.c.condition.expression", "invalid_expression")),
        (conditional("c", "1 in 'abc' and true", "a"), ("steps.c.condition.expression", "invalid_expression")),
        (conditional("c", "", "a"), ("steps.c.condition.expression", "invalid")),
        (conditional("c", "true", None, None), ("steps.c.if_true_step", "required")),
        (conditional("c", "true", "ghost"), ("steps.c.if_true_step", "unknown_step")),
        (conditional("c", "true", "a", "ghost"), ("steps.c.if_false_step", "unknown_step")),
    ],
)
def test_conditional_rules(step, expected):
    found = problems(workflow(step, agent("a")))
    assert expected in found
    assert found - {expected} <= {("steps.a", "unreachable")}


def test_condition_syntax_error_message_has_the_position():
    message = messages(workflow(conditional("c", "1 < 2 < 3", "a"), agent("a")))["steps.c.condition.expression"]
    assert message == "Comparisons cannot be chained; combine them with 'and' (at position 6)"


def test_literals_that_can_be_compared_are_fine_at_save_time():
    assert validate_definition(workflow(conditional("c", "'a' in ['a', 'b'] and 2 > 1", "a"), agent("a"))) == []
    message = messages(workflow(conditional("c", "'high' >= 0.8", "a"), agent("a")))["steps.c.condition.expression"]
    assert message.startswith("Cannot compare string 'high' with number 0.8 using '>='")


def test_conditional_may_use_one_step_for_both_branches():
    assert validate_definition(workflow(conditional("c", "true", "a", "a"), agent("a"))) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"collection": None}, ("steps.l1.loop_config.collection", "required")),
        ({"collection": 5}, ("steps.l1.loop_config.collection", "invalid_type")),
        ({"collection": "items please"}, ("steps.l1.loop_config.collection", "invalid_reference")),
        ({"collection": "${a.output} ${b.output}"}, ("steps.l1.loop_config.collection", "invalid_reference")),
        ({"loop_body": []}, ("steps.l1.loop_config.loop_body", "invalid")),
        ({"loop_body": None}, ("steps.l1.loop_config.loop_body", "required")),
        ({"loop_body": ["a", "ghost"]}, ("steps.l1.loop_config.loop_body.1", "unknown_step")),
        ({"execution_mode": "async"}, ("steps.l1.loop_config.execution_mode", "invalid")),
        ({"on_error": "ignore"}, ("steps.l1.loop_config.on_error", "invalid")),
        ({"max_iterations": 0}, ("steps.l1.loop_config.max_iterations", "invalid")),
        ({"max_parallelism": -2}, ("steps.l1.loop_config.max_parallelism", "invalid")),
    ],
)
def test_loop_rules(config, expected):
    step = loop("l1", ["a"])
    step["loop_config"].update(config)
    found = problems(workflow(step, agent("a")))
    assert expected in found
    assert found - {expected} <= {("steps.a", "unreachable")}


def test_loop_config_is_required():
    assert problems(workflow(block("l1", "loop"))) == {("steps.l1.loop_config", "required")}


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (fork_join("fj", {"b1": ["a"]}), ("steps.fj.fork_join_config.branches", "invalid")),
        (
            fork_join("fj", {"b1": ["ghost"], "b2": ["a"]}),
            ("steps.fj.fork_join_config.branches.b1.steps.0", "unknown_step"),
        ),
        (fork_join("fj", {"b1": [], "b2": ["a"]}), ("steps.fj.fork_join_config.branches.b1.steps", "invalid")),
        (
            fork_join("fj", {"b1": ["a"], "b2": ["b"]}, join_policy="first"),
            ("steps.fj.fork_join_config.join_policy", "invalid"),
        ),
        (
            fork_join("fj", {"b1": ["a"], "b2": ["b"]}, join_policy="n_of_m"),
            ("steps.fj.fork_join_config.n_required", "required"),
        ),
        (
            fork_join("fj", {"b1": ["a"], "b2": ["b"]}, join_policy="n_of_m", n_required=3),
            ("steps.fj.fork_join_config.n_required", "invalid"),
        ),
        (
            fork_join("fj", {"b1": ["a"], "b2": ["b"]}, join_policy="n_of_m", n_required=0),
            ("steps.fj.fork_join_config.n_required", "invalid"),
        ),
        (
            fork_join("fj", {"b1": ["a"], "b2": ["b"]}, branch_timeout_seconds=0),
            ("steps.fj.fork_join_config.branch_timeout_seconds", "invalid"),
        ),
        (
            fork_join("fj", {"b1": ["a"], "b2": ["b", "a"]}),
            ("steps.fj.fork_join_config.branches.b2.steps.1", "multiple_parents"),
        ),
        (block("fj", "fork_join"), ("steps.fj.fork_join_config", "required")),
        (block("fj", "fork_join", fork_join_config={}), ("steps.fj.fork_join_config.branches", "required")),
    ],
)
def test_fork_join_rules(step, expected):
    found = problems(workflow(step, agent("a"), agent("b")))
    assert expected in found
    assert found - {expected} <= {("steps.a", "unreachable"), ("steps.b", "unreachable")}


def test_fork_join_branch_fields():
    step = fork_join("fj", {"b1": ["a"], "b2": ["b"]})
    step["fork_join_config"]["branches"]["b1"]["timeout_seconds"] = -1
    step["fork_join_config"]["branches"]["b3"] = ["a"]
    assert problems(workflow(step, agent("a"), agent("b"))) == {
        ("steps.fj.fork_join_config.branches.b1.timeout_seconds", "invalid"),
        ("steps.fj.fork_join_config.branches.b3", "invalid_type"),
    }
    n_of_m = fork_join("fj", {"b1": ["a"], "b2": ["b"]}, join_policy="n_of_m", n_required=3)
    assert messages(workflow(n_of_m, agent("a"), agent("b"))) == {
        "steps.fj.fork_join_config.n_required": "n_required (3) exceeds the number of branches (2)"
    }


# --- graph: cycles, reachability, one parent per step --------------------------------------------


def test_cycle_is_reported_with_its_path():
    definition = workflow(agent("a", "b"), agent("b", "a"))
    assert validate_definition(definition) == [Issue("steps.b.next_step", "Cycle: a -> b -> a", "cycle")]


def test_longer_cycle_not_through_the_start():
    definition = workflow(agent("s", "a"), agent("a", "b"), agent("b", "c"), agent("c", "a"))
    assert validate_definition(definition) == [Issue("steps.c.next_step", "Cycle: a -> b -> c -> a", "cycle")]


def test_blocks_containing_each_other_are_a_cycle():
    definition = workflow(agent("s"), parallel("p1", ["p2", "x"]), parallel("p2", ["p1", "y"]), agent("x"), agent("y"))
    found = validate_definition(definition)
    assert Issue("steps.p2.parallel_steps.0", "Cycle: p1 -> p2 -> p1", "cycle") in found
    assert {i.field for i in found if i.type == "unreachable"} == {"steps.p1", "steps.p2", "steps.x", "steps.y"}


def test_unreachable_steps():
    definition = workflow(agent("a"), agent("orphan", "orphan-2"), agent("orphan-2"))
    assert validate_definition(definition) == [
        Issue("steps.orphan", "Step 'orphan' is not reachable from 'a'", "unreachable"),
        Issue("steps.orphan-2", "Step 'orphan-2' is not reachable from 'a'", "unreachable"),
    ]


def test_the_next_step_of_a_child_is_ignored_and_the_message_says_so():
    definition = workflow(parallel("p", ["a", "b"]), agent("a", "x"), agent("b"), agent("x"))
    assert messages(definition) == {
        "steps.x": "Step 'x' is not reachable from 'p' (the next_step of 'a' is ignored: it runs inside 'p')"
    }


def test_children_of_blocks_are_reachable_through_their_parent():
    definition = workflow(
        parallel("p", ["c", "l"], "fj"),
        conditional("c", "true", "t", "f"),
        loop("l", ["body"]),
        fork_join("fj", {"x": ["x1", "x2"], "y": ["y1"]}),
        *(agent(s) for s in ("t", "f", "body", "x1", "x2", "y1")),
    )
    assert validate_definition(definition) == []


def test_a_step_in_two_blocks():
    definition = workflow(
        parallel("p1", ["a", "b"], "p2"), parallel("p2", ["a", "c"]), agent("a"), agent("b"), agent("c")
    )
    assert validate_definition(definition) == [
        Issue(
            "steps.p2.parallel_steps.0", "Step 'a' is already in 'p1' (steps.p1.parallel_steps.0)", "multiple_parents"
        )
    ]


def test_a_step_in_a_loop_body_and_in_the_main_chain():
    definition = workflow(loop("l", ["a"], next_step="a"), agent("a"))
    assert validate_definition(definition) == [
        Issue(
            "steps.l.next_step",
            "Step 'a' is inside 'l' (steps.l.loop_config.loop_body.0) and cannot also follow 'l'",
            "multiple_parents",
        )
    ]


def test_the_start_step_cannot_be_inside_a_block():
    definition = workflow(agent("a"), loop("l", ["a"]), start="a")
    assert problems(definition) == {("start_step", "invalid")}


# --- references: which outputs a step may use ------------------------------------------------------


def test_forward_and_self_references():
    definition = workflow(refers("a", "${b.output}", "b"), refers("b", "${b.output.x}"))
    assert problems(definition) == {
        ("steps.a.input_mapping.x", "unavailable_reference"),
        ("steps.b.input_mapping.x", "unavailable_reference"),
    }
    assert messages(definition)["steps.a.input_mapping.x"] == (
        "${b.output}: step 'b' is not guaranteed to have finished before 'a' (it runs later, or concurrently)"
    )


def test_reference_to_an_unknown_step():
    definition = workflow(refers("a", "text ${ghost.output.x} text"))
    assert validate_definition(definition) == [
        Issue("steps.a.input_mapping.x", "${ghost.output.x}: unknown step 'ghost'", "unknown_step")
    ]


def test_loop_references_only_inside_a_loop_body():
    definition = workflow(
        refers("a", "${loop.item}", "l"), loop("l", ["b"], "${loop.item.list}"), refers("b", "${loop.index}")
    )
    assert problems(definition) == {
        ("steps.a.input_mapping.x", "invalid_reference"),
        ("steps.l.loop_config.collection", "invalid_reference"),
    }


def test_parallel_siblings_cannot_see_each_other_but_later_steps_see_all():
    definition = workflow(
        parallel("p", ["a", "b"], "after"),
        agent("a"),
        refers("b", "${a.output}"),
        agent("after", input_mapping={"x": "${a.output}", "y": "${b.output}", "z": "${p.output}"}),
    )
    assert problems(definition) == {("steps.b.input_mapping.x", "unavailable_reference")}


def test_a_child_cannot_use_its_block_output():
    definition = workflow(parallel("p", ["a", "b"]), refers("a", "${p.output}"), agent("b"))
    assert messages(definition) == {
        "steps.a.input_mapping.x": "${p.output}: step 'p' is not guaranteed to have finished before 'a' "
        "(a step cannot use its own output, nor its enclosing block's)"
    }


def test_children_see_what_their_block_sees():
    definition = workflow(
        agent("first", "p"),
        parallel("p", ["a", "l"]),
        refers("a", "${first.output}"),
        loop("l", ["deep"], "${first.output.items}"),
        refers("deep", "${first.output} ${loop.item}"),
    )
    assert validate_definition(definition) == []


def test_loop_body_steps_see_earlier_body_steps_only():
    definition = workflow(
        loop("l", ["b1", "b2"], next_step="after"),
        refers("b1", "${b2.output}"),
        refers("b2", "${b1.output}"),
        refers("after", "${b1.output}"),
    )
    found = messages(definition)
    assert set(found) == {"steps.b1.input_mapping.x", "steps.after.input_mapping.x"}
    assert "it runs once per iteration inside loop 'l'; use ${l.output}" in found["steps.after.input_mapping.x"]


def test_conditional_branches_are_not_visible_after_the_block():
    definition = workflow(
        agent("before", "c"),
        conditional("c", "${before.output.ok}", "t", "f", "after"),
        refers("t", "${before.output}"),
        refers("f", "${t.output}"),
        agent("after", input_mapping={"x": "${t.output}", "y": "${c.output.branch_output}"}),
    )
    found = messages(definition)
    assert set(found) == {"steps.f.input_mapping.x", "steps.after.input_mapping.x"}
    assert "it runs only on one branch of conditional 'c'" in found["steps.after.input_mapping.x"]


def test_exists_may_probe_steps_that_might_not_have_run():
    definition = workflow(
        conditional("c", "true", "t", None, "check"),
        agent("t"),
        conditional("check", "exists(${t.output}) and ${t.output.ok}", "u"),
        agent("u"),
    )
    # The unguarded use is still reported; the guarded one is fine.
    assert problems(definition) == {("steps.check.condition.expression", "unavailable_reference")}
    definition["steps"]["check"]["condition"]["expression"] = "exists(${t.output}) or exists(${ghost.output})"
    assert problems(definition) == {("steps.check.condition.expression", "unknown_step")}


def test_condition_references_are_checked_at_the_block():
    definition = workflow(conditional("c", "${t.output.ok} == true", "t"), agent("t"))
    assert problems(definition) == {("steps.c.condition.expression", "unavailable_reference")}


def test_fork_join_visibility_depends_on_the_join_policy():
    def build(policy):
        return workflow(
            fork_join("fj", {"b1": ["x1", "x2"], "b2": ["y1"]}, "after", join_policy=policy, n_required=1),
            agent("x1"),
            refers("x2", "${x1.output}"),
            refers("y1", "${x1.output}"),
            agent("after", input_mapping={"x": "${x2.output}", "all": "${fj.output}"}),
        )

    assert problems(build("all")) == {("steps.y1.input_mapping.x", "unavailable_reference")}
    for policy in ("any", "majority", "n_of_m"):
        assert problems(build(policy)) == {
            ("steps.y1.input_mapping.x", "unavailable_reference"),
            ("steps.after.input_mapping.x", "unavailable_reference"),
        }


def test_outputs_inside_nested_parallel_blocks_are_visible_after_the_outer_block():
    definition = workflow(
        parallel("outer", ["inner", "c"], "after"),
        parallel("inner", ["a", "b"]),
        agent("a"),
        agent("b"),
        agent("c"),
        refers("after", "${a.output} ${inner.output} ${c.output}"),
    )
    assert validate_definition(definition) == []


def test_loop_collection_may_not_use_later_steps():
    definition = workflow(loop("l", ["b"], "${b.output.items}"), agent("b"))
    assert problems(definition) == {("steps.l.loop_config.collection", "unavailable_reference")}


# --- everything at once, size and speed -----------------------------------------------------------


def test_all_problems_are_reported_together():
    definition = copy.deepcopy(SPEC_EXAMPLE)
    del definition["name"]
    definition["input_schema"] = {"type": "strin"}
    definition["steps"]["step-2"]["next_step"] = "step-3"
    del definition["steps"]["step-2"]["agent_name"]
    issues = validate_definition(definition)
    assert {(i.field, i.type) for i in issues} == {
        ("name", "required"),
        ("input_schema.type", "invalid_schema"),
        ("steps.step-2.next_step", "unknown_step"),
        ("steps.step-2.agent_name", "required"),
    }
    assert len(issues) == 4


def test_issues_serialise_for_the_api():
    issue = validate_definition({**SPEC_EXAMPLE, "name": ""})[0]
    assert issue.as_dict() == {"field": "name", "message": "Must not be empty", "type": "invalid"}


def chain(count):
    steps = [agent("s0", "s1", input_mapping={"topic": "${workflow.input.topic}"})]
    steps += [
        refers(f"s{i}", f"${{s{i - 1}.output.text}}", f"s{i + 1}" if i < count - 1 else None) for i in range(1, count)
    ]
    return workflow(*steps)


def blocks(groups):
    """groups * 10 steps mixing every block type, each group referencing the previous one."""
    steps = []
    for g in range(groups):
        after = f"p{g + 1}" if g < groups - 1 else None
        previous = f"${{f{g - 1}.output}}" if g else "${workflow.input}"
        steps += [
            parallel(f"p{g}", [f"a{g}", f"l{g}"], f"c{g}"),
            refers(f"a{g}", previous),
            loop(f"l{g}", [f"b{g}", f"d{g}"], "${workflow.input.items}"),
            refers(f"b{g}", "${loop.item}"),
            refers(f"d{g}", f"${{b{g}.output}}"),
            conditional(f"c{g}", f"${{a{g}.output.ok}} and exists(${{l{g}.output}})", f"t{g}", None, f"j{g}"),
            refers(f"t{g}", f"${{l{g}.output}}"),
            fork_join(f"j{g}", {"x": [f"x{g}"], "y": [f"f{g}"]}, after),
            refers(f"x{g}", f"${{c{g}.output}}"),
            agent(f"f{g}"),
        ]
    return workflow(*steps)


def nested_loops(depth):
    steps = [loop(f"n{i}", [f"n{i + 1}"], "${loop.item}" if i else "${workflow.input.x}") for i in range(depth)]
    steps.append(refers(f"n{depth}", "${loop.item}"))
    return workflow(*steps)


@pytest.mark.parametrize(("build", "size"), [(chain, 1000), (blocks, 100), (nested_loops, 1000)])
def test_large_definitions_validate_quickly_without_recursion(build, size):
    definition = build(size)
    assert len(definition["steps"]) >= 1000
    started = time.perf_counter()
    assert validate_definition(definition) == []
    # A guard against quadratic (or worse) validation, not a speed target: 0.2-0.5 s here, seen at 1.5 s
    # on a loaded CI machine (a bound of 1 s failed there); a quadratic walk of these sizes takes minutes.
    assert time.perf_counter() - started < 10.0


def test_a_long_cycle_and_a_long_unreachable_tail_are_reported():
    definition = chain(1000)
    definition["steps"]["s999"]["next_step"] = "s0"
    assert problems(definition) == {("steps.s999.next_step", "cycle")}
    definition["steps"]["s999"]["next_step"] = None
    definition["steps"]["s499"]["next_step"] = None
    assert problems(definition) == {(f"steps.s{i}", "unreachable") for i in range(500, 1000)}


# --- the plan ------------------------------------------------------------------------------------


def test_plan_fills_defaults_and_drops_server_owned_fields():
    definition = {**workflow(agent("a", "l"), loop("l", ["b"], "a.output.items"), agent("b")), "workflow_id": "x"}
    definition["version"] = "2"
    definition["steps"]["b"] = {"id": "b", "agent_name": "B"}
    before = copy.deepcopy(definition)
    plan = plan_from_definition(definition)
    assert definition == before
    assert set(plan) == {"name", "start_step", "steps"}
    assert plan["steps"]["b"] == {
        "id": "b",
        "agent_name": "B",
        "type": "agent",
        "next_step": None,
        "input_mapping": {},
        "timeout_seconds": None,
        "retry": None,
    }
    assert plan["steps"]["l"]["loop_config"] == {
        "collection": "${a.output.items}",
        "loop_body": ["b"],
        "execution_mode": "sequential",
        "on_error": "stop",
        "max_parallelism": None,
        "max_iterations": None,
    }


def test_plan_of_every_block_type():
    plan = plan_from_definition(VALID["fork_join"])
    config = plan["steps"]["fj"]["fork_join_config"]
    assert config["join_policy"] == "all" and config["n_required"] is None
    assert config["branches"]["left"] == {"steps": ["l1", "l2"], "timeout_seconds": None}
    conditional_plan = plan_from_definition(VALID["conditional_one_branch"])["steps"]["c"]
    assert conditional_plan["if_true_step"] is None and conditional_plan["if_false_step"] == "no"
    assert plan_from_definition(VALID["parallel"])["steps"]["p"]["max_parallelism"] == 2
    spec_plan = plan_from_definition(SPEC_EXAMPLE)
    assert spec_plan["input_schema"] == SPEC_EXAMPLE["input_schema"]
    assert spec_plan["description"] == "optional"
    assert validate_definition(spec_plan) == []


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ([agent("a", timeout_seconds=86_401)], "steps.a.timeout_seconds"),
        ([agent("a", retry={"initial_delay_ms": 86_400_001})], "steps.a.retry.initial_delay_ms"),
        ([agent("a", retry={"max_delay_ms": 10**12})], "steps.a.retry.max_delay_ms"),
        ([agent("a", retry={"backoff_multiplier": 11})], "steps.a.retry.backoff_multiplier"),
        ([agent("a", retry={"max_retries": 11})], "steps.a.retry.max_retries"),
        ([parallel("p", ["a", "b"], max_parallelism=10_001), agent("a"), agent("b")], "steps.p.max_parallelism"),
        ([loop("l", ["a"], max_iterations=10_001), agent("a")], "steps.l.loop_config.max_iterations"),
        ([loop("l", ["a"], max_parallelism=10**9), agent("a")], "steps.l.loop_config.max_parallelism"),
        (
            [
                fork_join("f", {"x": ["a"], "y": ["b"]}, branch_timeout_seconds=10**7),
                agent("a"),
                agent("b"),
            ],
            "steps.f.fork_join_config.branch_timeout_seconds",
        ),
    ],
)
def test_every_number_has_an_upper_bound(steps, field):
    found = messages(workflow(*steps))
    assert field in found and found[field].startswith("Must be at most"), found
