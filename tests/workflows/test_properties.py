"""Properties of the reference resolver and the condition language, over generated values (hypothesis)."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.definition.expressions import ExpressionError, ExpressionSyntaxError, evaluate, json_equal
from workflows.definition.references import UnresolvedReference, resolve_reference, resolve_value

KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
SCALARS = st.none() | st.booleans() | st.integers(-(10**9), 10**9) | st.floats(allow_nan=False) | st.text(max_size=20)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4))


def context(value, outputs=None):
    return {"input": {"v": value}, "outputs": outputs or {}, "loop": None}


@given(JSON)
def test_a_whole_value_reference_keeps_the_json_type(value):
    assert resolve_value("${workflow.input.v}", context(value)) == value
    assert type(resolve_value("${workflow.input.v}", context(value))) is type(value)


@given(st.lists(SCALARS, min_size=1, max_size=10), st.data())
def test_indexes_count_from_both_ends(items, data):
    index = data.draw(st.integers(-len(items), len(items) - 1))
    assert resolve_value(f"${{workflow.input.v[{index}]}}", context(items)) == items[index]


@given(st.lists(SCALARS, max_size=5), st.integers(5, 50))
def test_an_index_out_of_range_is_an_error_never_null(items, index):
    try:
        resolve_value(f"${{workflow.input.v[{index}]}}", context(items))
    except UnresolvedReference as exc:
        assert f"no index {index}" in str(exc)
    else:
        raise AssertionError("resolved an index past the end")


@given(st.text(alphabet=st.characters(blacklist_characters="${}"), max_size=20), JSON)
def test_interpolation_renders_strings_as_they_are_and_the_rest_as_json(prefix, value):
    text = resolve_value(prefix + "${workflow.input.v}!", context(value))
    rendered = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert text == f"{prefix}{rendered}!"


@given(st.integers(-1000, 1000) | st.floats(-1e6, 1e6), st.integers(-1000, 1000) | st.floats(-1e6, 1e6))
def test_comparisons_of_numbers_agree_with_python(a, b):
    ctx = context({"a": a, "b": b})
    resolve = lambda reference: resolve_reference(reference, ctx)  # noqa: E731
    assert evaluate("${workflow.input.v.a} < ${workflow.input.v.b}", resolve) is (a < b)
    assert evaluate("${workflow.input.v.a} == ${workflow.input.v.b}", resolve) is (a == b)
    assert evaluate("not (${workflow.input.v.a} >= ${workflow.input.v.b})", resolve) is (a < b)


@given(JSON, JSON)
def test_json_equality_is_symmetric_and_reflexive(a, b):
    assert json_equal(a, b) == json_equal(b, a)
    assert json_equal(a, a)


@given(st.text(max_size=60))
@settings(max_examples=300)
def test_any_text_either_parses_and_evaluates_or_raises_a_clear_error(text):
    """Nothing the parser or evaluator does can run code: the only outcomes are a value or our errors."""
    try:
        evaluate(text, lambda ref: 1)
    except (ExpressionSyntaxError, ExpressionError, UnresolvedReference):
        pass


@given(st.sampled_from(["string", 1, True, None, [1], {"k": 1}]), st.sampled_from([">", "<", ">=", "<="]))
def test_ordering_incompatible_types_is_an_error_not_false(value, op):
    ctx = context(value)
    resolve = lambda ref: ctx["input"]["v"]  # noqa: E731
    if isinstance(value, int) and not isinstance(value, bool):
        assert evaluate(f"${{workflow.input.v}} {op} 0", resolve) in (True, False)
        return
    try:
        evaluate(f"${{workflow.input.v}} {op} 0", resolve)
    except ExpressionError as exc:
        assert "Cannot compare" in str(exc)
    else:
        raise AssertionError("compared incompatible types")
