"""References and templates: parsing, finding and resolving ${...} (pure Python, no database)."""

from types import SimpleNamespace

import pytest

from workflows.definition.references import (
    Reference,
    ReferenceSyntaxError,
    UnresolvedReference,
    find_references,
    parse_reference,
    resolve_reference,
    resolve_value,
    split_template,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${workflow.input}", Reference("input", None, ())),
        ("${workflow.input.a.b}", Reference("input", None, ("a", "b"))),
        ("workflow.input.topic", Reference("input", None, ("topic",))),
        ("${step-1.output}", Reference("step", "step-1", ())),
        ("${step-1.output.findings}", Reference("step", "step-1", ("findings",))),
        ("${steps.step_2.output.x}", Reference("step", "step_2", ("x",))),
        ("${step-1.output.items[0].name}", Reference("step", "step-1", ("items", 0, "name"))),
        ("${s.output.items[-1]}", Reference("step", "s", ("items", -1))),
        ("${s.output[2][-3]}", Reference("step", "s", (2, -3))),
        ("${loop.item}", Reference("loop", None, ("item",))),
        ("${loop.item.field[1]}", Reference("loop", None, ("item", "field", 1))),
        ("${loop.index}", Reference("loop", None, ("index",))),
        ("${loop.total}", Reference("loop", None, ("total",))),
        ("${loop.is_first}", Reference("loop", None, ("is_first",))),
        ("${loop.is_last}", Reference("loop", None, ("is_last",))),
        ("  ${ workflow.input.a }  ", Reference("input", None, ("a",))),
        # Steps may be called like the reserved heads: the segment after the head decides.
        ("${loop.output.x}", Reference("step", "loop", ("x",))),
        ("${workflow.output}", Reference("step", "workflow", ())),
        ("${steps.output}", Reference("step", "steps", ())),
        ("${steps.steps.output}", Reference("step", "steps", ())),
        ("${s.output.key-with-dash.@type}", Reference("step", "s", ("key-with-dash", "@type"))),
    ],
)
def test_parse_reference(text, expected):
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${}", "expected workflow.input"),
        ("${workflow.inputs.a}", "'workflow' must be followed by '.input'"),
        ("${workflow}", "'workflow' must be followed by '.input'"),
        ("${loop}", "expected one of loop.item, loop.index"),
        ("${loop.items}", "expected one of loop.item"),
        ("${loop.index.x}", "loop.index has no fields"),
        ("${step-1}", "expected 'step-1.output'"),
        ("${step-1.outputs.x}", "expected 'step-1.output'"),
        ("${steps.a}", "expected 'a.output'"),
        ("${steps[0].output}", "expected steps.<step_id>.output"),
        ("${a b.output}", "unexpected ' ' at position 1"),
        ("${s.output.}", "unexpected '.' at position 8"),
        ("${s.output[x]}", "unexpected '[' at position 8"),
        ("${s.output[1.5]}", "unexpected '[' at position 8"),
        ("${b@d.output}", "'b@d' is not a valid step id"),
        ("${" + "a" * 101 + ".output}", "is not a valid step id"),
    ],
)
def test_parse_reference_errors_say_what_is_wrong(text, message):
    with pytest.raises(ReferenceSyntaxError, match="Invalid reference") as caught:
        parse_reference(text)
    assert message in str(caught.value)


def test_reference_text_is_canonical():
    assert parse_reference("${steps.a.output.items[-1].name}").text == "${a.output.items[-1].name}"
    assert str(parse_reference("workflow.input.x[0]")) == "${workflow.input.x[0]}"
    assert parse_reference("${loop.item.k}").text == "${loop.item.k}"


def test_references_are_hashable_values():
    assert len({parse_reference("${a.output.x}"), parse_reference("${steps.a.output.x}")}) == 1


def test_split_template_keeps_text_and_references_in_order():
    parts = split_template("Hi ${workflow.input.name}, see ${a.output.url}!")
    assert parts == ["Hi ", Reference("input", None, ("name",)), ", see ", Reference("step", "a", ("url",)), "!"]
    assert split_template("") == []
    assert split_template("plain") == ["plain"]
    assert split_template("${a.output}${b.output}") == [Reference("step", "a"), Reference("step", "b")]


def test_double_dollar_escapes_a_literal_reference():
    assert split_template("cost: $${not.a.ref} and ${a.output}") == ["cost: ${not.a.ref} and ", Reference("step", "a")]
    assert resolve_value("$${x}", {}) == "${x}"


@pytest.mark.parametrize("text", ["${a.output", "x ${", "${a.output.x} then ${b"])
def test_unterminated_reference_is_a_syntax_error(text):
    with pytest.raises(ReferenceSyntaxError, match="Unterminated reference"):
        split_template(text)


def test_find_references_walks_any_json_value():
    value = {
        "a": "${workflow.input.a}",
        "b": ["literal", 3, None, True, {"c": "x ${s1.output.y[0]} y ${loop.index}"}],
        "d": {"e": {"f": "${steps.s2.output}"}},
        "n": 1.5,
    }
    assert find_references(value) == [
        Reference("input", None, ("a",)),
        Reference("step", "s1", ("y", 0)),
        Reference("loop", None, ("index",)),
        Reference("step", "s2", ()),
    ]
    assert find_references("${a.output}") == [Reference("step", "a")]
    assert find_references([1, 2, {"k": False}]) == []


def test_find_references_raises_on_bad_syntax():
    with pytest.raises(ReferenceSyntaxError):
        find_references({"a": ["ok", "${nope}"]})


CONTEXT = {
    "input": {"topic": "AI", "n": 3, "tags": ["x", "y", "z"], "flag": False, "nothing": None},
    "outputs": {
        "step-1": {"findings": ["f1", "f2"], "score": 0.75, "meta": {"ok": True}, "items": [{"name": "first"}]},
        "empty": None,
    },
    "loop": {"item": {"id": 7}, "index": 0, "total": 2, "is_first": True, "is_last": False},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${workflow.input.n}", 3),
        ("${workflow.input.flag}", False),
        ("${workflow.input.nothing}", None),
        ("${workflow.input.tags}", ["x", "y", "z"]),
        ("${workflow.input}", CONTEXT["input"]),
        ("${step-1.output.findings}", ["f1", "f2"]),
        ("${step-1.output.meta}", {"ok": True}),
        ("${step-1.output.items[0].name}", "first"),
        ("${step-1.output.items[-1].name}", "first"),
        ("${workflow.input.tags[-1]}", "z"),
        ("${workflow.input.tags.1}", "y"),  # older files write indexes as keys
        ("${steps.step-1.output.score}", 0.75),
        ("${empty.output}", None),
        ("${loop.item.id}", 7),
        ("${loop.index}", 0),
        ("${loop.is_first}", True),
        ("${loop.is_last}", False),
    ],
)
def test_a_single_reference_keeps_its_json_type(template, expected):
    assert resolve_value(template, CONTEXT) == expected
    assert type(resolve_value(template, CONTEXT)) is type(expected)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Topic: ${workflow.input.topic}", "Topic: AI"),
        ("n=${workflow.input.n}", "n=3"),
        ("score ${step-1.output.score}", "score 0.75"),
        ("flag=${workflow.input.flag}/${loop.is_first}", "flag=false/true"),
        ("none=${workflow.input.nothing}", "none=null"),
        ("tags: ${workflow.input.tags}", 'tags: ["x","y","z"]'),
        ("meta: ${step-1.output.meta}", 'meta: {"ok":true}'),
        ("${loop.index}/${loop.total}", "0/2"),
        (" ${workflow.input.n}", " 3"),
        ("no references", "no references"),
    ],
)
def test_mixed_text_interpolates(template, expected):
    assert resolve_value(template, CONTEXT) == expected


def test_dicts_and_lists_resolve_recursively_and_literals_are_unchanged():
    value = {
        "topic": "${workflow.input.topic}",
        "nested": {"list": ["${workflow.input.n}", 5, None, {"deep": "${loop.item}"}]},
        "number": 1,
        "bool": True,
        "null": None,
        "text": "formal",
    }
    assert resolve_value(value, CONTEXT) == {
        "topic": "AI",
        "nested": {"list": [3, 5, None, {"deep": {"id": 7}}]},
        "number": 1,
        "bool": True,
        "null": None,
        "text": "formal",
    }
    assert resolve_value(42, CONTEXT) == 42


def test_context_may_be_an_object():
    context = SimpleNamespace(input={"a": 1}, outputs={"s": {"b": 2}}, loop=None)
    assert resolve_value({"x": "${workflow.input.a}", "y": "${s.output.b}"}, context) == {"x": 1, "y": 2}


def test_resolving_does_not_mutate_the_template():
    template = {"a": ["${workflow.input.n}"]}
    resolve_value(template, CONTEXT)
    assert template == {"a": ["${workflow.input.n}"]}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${step-1.output.findings_x}", "${step-1.output.findings_x}: step-1's output has no key 'findings_x'"),
        (
            "${step-1.output.meta.missing}",
            "${step-1.output.meta.missing}: step-1's output at 'meta' has no key 'missing'",
        ),
        ("${step-1.output.findings[5]}", "step-1's output at 'findings' has no index 5 (length 2)"),
        ("${step-1.output.findings[-3]}", "has no index -3 (length 2)"),
        ("${step-1.output.score.x}", "step-1's output at 'score' is number, not an object (key 'x')"),
        ("${step-1.output.meta[0]}", "step-1's output at 'meta' is object, not an array (index [0])"),
        ("${step-9.output}", "${step-9.output}: step 'step-9' has no output (it has not finished)"),
        ("${workflow.input.missing}", "${workflow.input.missing}: the workflow input has no key 'missing'"),
        ("${loop.item.nope}", "${loop.item.nope}: loop.item has no key 'nope'"),
        ("text ${workflow.input.nope} text", "the workflow input has no key 'nope'"),
    ],
)
def test_unresolved_references_fail_with_a_clear_message(template, message):
    with pytest.raises(UnresolvedReference) as caught:
        resolve_value({"k": [template]}, CONTEXT)
    assert message in str(caught.value)


def test_the_first_example_message_is_exact():
    context = {"outputs": {"step-1": {"summary": "..."}}}
    with pytest.raises(UnresolvedReference) as caught:
        resolve_value("${step-1.output.findings}", context)
    assert str(caught.value) == "${step-1.output.findings}: step-1's output has no key 'findings'"
    assert caught.value.reference == Reference("step", "step-1", ("findings",))


def test_loop_references_outside_a_loop_fail():
    with pytest.raises(UnresolvedReference, match="no loop context"):
        resolve_value("${loop.item}", {"input": {}, "outputs": {}, "loop": None})
    with pytest.raises(UnresolvedReference, match="the loop context has no 'total'"):
        resolve_value("${loop.total}", {"loop": {"item": 1}})


def test_null_is_never_produced_silently():
    with pytest.raises(UnresolvedReference):
        resolve_reference(parse_reference("${workflow.input.a}"), {"input": None})
