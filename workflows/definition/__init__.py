"""The workflow definition format: references, condition expressions and validation (pure Python)."""

from workflows.definition.expressions import (
    ExpressionError,
    ExpressionSyntaxError,
    evaluate,
    parse_expression,
    references_in,
)
from workflows.definition.plan import plan_from_definition
from workflows.definition.references import (
    Reference,
    ReferenceSyntaxError,
    UnresolvedReference,
    find_references,
    parse_reference,
    resolve_reference,
    resolve_value,
)
from workflows.definition.validation import Issue, validate_definition

__all__ = [
    "ExpressionError",
    "ExpressionSyntaxError",
    "Issue",
    "Reference",
    "ReferenceSyntaxError",
    "UnresolvedReference",
    "evaluate",
    "find_references",
    "parse_expression",
    "parse_reference",
    "plan_from_definition",
    "references_in",
    "resolve_reference",
    "resolve_value",
    "validate_definition",
]
