"""Condition expressions: parsing, precedence, operators, errors and safety (pure Python, no database)."""

import ast
import inspect

import pytest

from workflows.definition import expressions
from workflows.definition.expressions import (
    MAX_DEPTH,
    BoolOp,
    Compare,
    ExpressionError,
    ExpressionSyntaxError,
    Literal,
    Not,
    Ref,
    evaluate,
    parse_expression,
    references_in,
)
from workflows.definition.references import Reference, UnresolvedReference, parse_reference, resolve_reference

CONTEXT = {
    "input": {"topic": "ai safety", "count": 3, "tags": ["a", "b"], "nothing": None, "flag": True},
    "outputs": {"s1": {"score": 0.8, "label": "good", "items": [1, 2, 3], "meta": {"k": "v"}, "empty": ""}},
    "loop": {"item": {"name": "x"}, "index": 1, "total": 3, "is_first": False, "is_last": False},
}


def resolver(reference):
    return resolve_reference(reference, CONTEXT)


def run(text):
    return evaluate(parse_expression(text), resolver)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("false", False),
        ("null", None),
        ("42", 42),
        ("-3", -3),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("-1.5E-2", -0.015),
        ("'single'", "single"),
        ('"double"', "double"),
        ("'it\\'s'", "it's"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'a\\nb\\t\\\\'", "a\nb\t\\"),
        ("'\\u00e9'", "é"),
        ("\"mixed 'quotes'\"", "mixed 'quotes'"),
        ("[1, 'two', null, [true]]", [1, "two", None, [True]]),
        ("[]", []),
        ('{"a": 1, "b": [2]}', {"a": 1, "b": [2]}),
        ("{'k': ${s1.output.label}}", {"k": "good"}),
        ("${s1.output.score}", 0.8),
        ("${steps.s1.output.items[-1]}", 3),
    ],
)
def test_literals_and_references(text, expected):
    assert run(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${s1.output.score} > 0.5", True),
        ("${s1.output.score} >= 0.8", True),
        ("${s1.output.score} < 0.8", False),
        ("${s1.output.score} <= 0.8", True),
        ("${s1.output.label} == 'good'", True),
        ('${s1.output.label} == "good"', True),
        ("${s1.output.label} != 'good'", False),
        ("'abc' < 'abd'", True),
        ("${workflow.input.count} == 3.0", True),
        ("true == 1", False),
        ("false == 0", False),
        ("null == null", True),
        ("${workflow.input.nothing} == null", True),
        ("'1' == 1", False),
        ("[1, 2] == [1, 2]", True),
        ("[1, 2] == [2, 1]", False),
        ('{"k": "v"} == ${s1.output.meta}', True),
        ("'b' in ${workflow.input.tags}", True),
        ("'c' in ${workflow.input.tags}", False),
        ("'c' not in ${workflow.input.tags}", True),
        ("1 in [1.0, 2]", True),
        ("true in [1]", False),
        ("'safe' in ${workflow.input.topic}", True),
        ("'k' in ${s1.output.meta}", True),
        ("'v' in ${s1.output.meta}", False),
        ("${workflow.input.tags} contains 'a'", True),
        ("${workflow.input.topic} contains 'ai'", True),
        ("${s1.output.meta} contains 'k'", True),
        ("${s1.output.items} contains 4", False),
        ("${loop.index} == 1 and not ${loop.is_last}", True),
    ],
)
def test_operators(text, expected):
    assert run(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true or false and false", True),  # and binds tighter than or
        ("(true or false) and false", False),
        ("not true or true", True),  # not binds tighter than or
        ("not (true or true)", False),
        ("not 1 == 2", True),  # not applies to the whole comparison
        ("not 'a' in ['a']", False),
        ("false and false or true", True),
        ("not not true", True),
        ("true and true and true and false", False),
        ("false or false or false or true", True),
    ],
)
def test_precedence(text, expected):
    assert run(text) is expected


def test_ast_shapes():
    assert parse_expression("true or false and null") == BoolOp(
        "or", (Literal(True), BoolOp("and", (Literal(False), Literal(None))))
    )
    assert parse_expression("not ${a.output} == 1") == Not(Compare("==", Ref(Reference("step", "a")), Literal(1), 16))


def test_and_or_return_the_raw_value_and_short_circuit():
    assert run("${s1.output.empty} or 'fallback'") == "fallback"
    assert run("${s1.output.label} or 'fallback'") == "good"
    assert run("${s1.output.label} and ${s1.output.items}") == [1, 2, 3]
    assert run("${s1.output.empty} and ${missing.output}") == ""
    assert run("false and ${missing.output.x} > 1") is False
    assert run("true or ${missing.output.x} > 1") is True


def test_exists():
    assert run("exists(${s1.output.score})") is True
    assert run("exists(${workflow.input.nothing})") is True  # resolves, to null
    assert run("exists(${s1.output.nope})") is False
    assert run("exists(${missing.output})") is False
    assert run("exists(${s1.output.items[7]})") is False
    assert run("not exists(${s1.output.nope}) and exists(${loop.item.name})") is True


def test_exists_lets_other_errors_through():
    def broken(reference):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        evaluate(parse_expression("exists(${a.output})"), broken)


def test_unresolved_reference_outside_exists_raises():
    with pytest.raises(UnresolvedReference, match=r"\$\{s1.output.nope\}: s1's output has no key 'nope'"):
        run("${s1.output.nope} == 1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("'a' < 3", "Cannot compare string 'a' with number 3 using '<' (at position 4)"),
        ("${s1.output.items} > 1", "Cannot compare array [1, 2, 3] with number 1 using '>'"),
        ("null >= 0", "Cannot compare null None with number 0"),
        ("true > false", "Cannot compare boolean True with boolean False"),
        ("1 in 5", "'in' needs an array, string or object, got number 5"),
        ("1 in 'abc'", "'in' on a string needs a string, got number 1"),
        ("1 not in {'a': 1}", "'not in' on an object's keys needs a string, got number 1"),
        ("${s1.output.score} contains 'x'", "'contains' needs an array, string or object, got number 0.8"),
    ],
)
def test_type_errors_are_clear(text, message):
    with pytest.raises(ExpressionError) as caught:
        run(text)
    assert message in str(caught.value)


def test_evaluate_accepts_text():
    assert evaluate("1 < 2", resolver) is True


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("__import__('os')", 0, "Unknown name '__import__'"),
        ("open('/etc/passwd')", 0, "Unknown name 'open'"),
        ("score > 1", 0, "Unknown name 'score'"),
        ("${a.output}.__class__", 11, "Unexpected character '.'"),
        ("${a.output} = 1", 12, "Unexpected character '='; use '=='"),
        ("1 ==", 4, "Unexpected end of expression: expected a value"),
        ("(1 == 1", 7, "expected ')'"),
        ("1 == 1)", 6, "Unexpected ')'"),
        ("'open", 0, "Unterminated string"),
        ("${a.output == 1", 0, "Unterminated reference"),
        ("1 < 2 < 3", 6, "Comparisons cannot be chained"),
        ("${workflow.inputs} == 1", 0, "Invalid reference '${workflow.inputs}'"),
        ("true and", 8, "expected a value"),
        ("and true", 0, "Unexpected 'and'"),
        ("1 2", 2, "Unexpected '2'"),
        ("exists('x')", 7, "exists() takes one reference"),
        ("exists ${a.output}", 7, "expected '(' after exists"),
        ("exists(${a.output}", 18, "')' closing exists("),
        ("[1, 2,]", 6, "expected a value"),
        ("{a: 1}", 1, "object keys must be quoted strings"),
        ("'bad \\q escape'", 5, "Invalid escape"),
        ("1 && 2", 2, "Unexpected character '&'"),
        ("007", 1, "Unexpected '0'"),
        ("", 0, "Empty expression"),
        ("   ", 0, "Empty expression"),
        ("a.b", 1, "Unexpected character '.'"),
        ("lambda: 1", 0, "Unknown name 'lambda'"),
        ("1 == not 2", 5, "Unexpected 'not'"),
    ],
)
def test_syntax_errors_carry_a_position(text, position, message):
    with pytest.raises(ExpressionSyntaxError) as caught:
        parse_expression(text)
    assert caught.value.position == position
    assert message in caught.value.message
    assert f"(at position {position})" in str(caught.value)


def test_limits_give_syntax_errors_not_recursion_errors():
    with pytest.raises(ExpressionSyntaxError, match="longer than 4000"):
        parse_expression("1 == " + "1" * 4000)
    with pytest.raises(ExpressionSyntaxError, match="nested deeper than 50"):
        parse_expression("(" * 1000 + "1" + ")" * 1000)
    with pytest.raises(ExpressionSyntaxError, match="nested deeper"):
        parse_expression("not " * 900 + "true")
    with pytest.raises(ExpressionSyntaxError, match="nested deeper"):
        parse_expression("[" * 500 + "]" * 500)
    nested = "(" * MAX_DEPTH + "true" + ")" * MAX_DEPTH
    assert run(nested) is True


def test_long_flat_chains_are_fine():
    text = " or ".join(["${s1.output.score} > 1"] * 120 + ["${loop.index} == 1"])
    assert len(text) < 4000
    assert run(text) is True
    assert len(parse_expression(text).operands) == 121


def test_references_in():
    expr = parse_expression(
        "${a.output.x} == 1 and (not exists(${b.output}) or ${loop.item} in [${workflow.input.y}, {'k': ${c.output}}])"
    )
    assert references_in(expr) == [
        parse_reference("${a.output.x}"),
        parse_reference("${b.output}"),
        parse_reference("${loop.item}"),
        parse_reference("${workflow.input.y}"),
        parse_reference("${c.output}"),
    ]
    assert parse_reference("${b.output}") not in references_in(expr, include_exists=False)
    assert references_in(parse_expression("true")) == []


def test_the_module_never_calls_eval_exec_or_compile():
    tree = ast.parse(inspect.getsource(expressions))
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__", "getattr"}
