"""Condition expressions, parsed and evaluated without ``eval``.

Grammar (lowest precedence first)::

    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := primary (op primary)?      op: == != > >= < <= in, not in, contains
    primary    := ${reference} | exists(${reference}) | "string" | 'string' | number | true | false | null
                | [expr, ...] | {"key": expr, ...} | ( expr )

Comparisons do not chain (``a < b < c`` is a syntax error: write ``a < b and b < c``). Equality is
JSON equality: ``true == 1`` is false and ``1 == 1.0`` is true. Ordering works between two numbers
or two strings; anything else is an ExpressionError at run time, never a silent false.
``exists(ref)`` is true when the reference resolves, even to null.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from workflows.definition.references import (
    Reference,
    ReferenceSyntaxError,
    UnresolvedReference,
    json_type,
    parse_reference,
)

MAX_LENGTH = 4000
MAX_DEPTH = 50

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<ref>\$\{[^}]*\})
    |(?P<number>-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>==|!=|>=|<=|>|<)
    |(?P<punct>[()\[\]{},:])""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", "'": "'", '"': '"'}
_CONSTANTS = {"true": True, "false": False, "null": None}
_KEYWORDS = {"and", "or", "not", "in", "contains", "exists", *_CONSTANTS}
_ORDERING = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


class ExpressionSyntaxError(ValueError):
    def __init__(self, message: str, position: int):
        super().__init__(f"{message} (at position {position})")
        self.message = message
        self.position = position


class ExpressionError(ValueError):
    """An expression cannot be evaluated (a type mismatch); unresolved references raise UnresolvedReference."""


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Ref:
    reference: Reference


@dataclass(frozen=True)
class Exists:
    reference: Reference


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"; n-ary so that long chains stay flat
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Expr
    right: Expr
    position: int


@dataclass(frozen=True)
class ArrayLiteral:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class ObjectLiteral:
    items: tuple[tuple[str, Expr], ...]


Expr = Literal | Ref | Exists | Not | BoolOp | Compare | ArrayLiteral | ObjectLiteral


class _Token(NamedTuple):
    kind: str
    text: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            char = text[pos]
            if char in "'\"":
                raise ExpressionSyntaxError("Unterminated string", pos)
            if text.startswith("${", pos):
                raise ExpressionSyntaxError("Unterminated reference: '${' without '}'", pos)
            hint = "; use '==' to compare" if char == "=" else ""
            raise ExpressionSyntaxError(f"Unexpected character {char!r}{hint}", pos)
        if match.lastgroup != "space":
            tokens.append(_Token(match.lastgroup, match.group(), pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _unquote(token: _Token) -> str:
    def replace(match: re.Match) -> str:
        code = match.group(1)
        if code[0] == "u" and len(code) == 5:
            return chr(int(code[1:], 16))
        if code not in _ESCAPES:
            raise ExpressionSyntaxError(f"Invalid escape '\\{code}' in string", token.position + 1 + match.start())
        return _ESCAPES[code]

    return _ESCAPE.sub(replace, token.text[1:-1])


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.index += 1
        return token

    def at(self, text: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token.kind in ("name", "punct") and token.text == text

    def expect(self, text: str, what: str) -> _Token:
        if not self.at(text):
            raise self.unexpected(f"expected {what}")
        return self.take()

    def unexpected(self, expected: str) -> ExpressionSyntaxError:
        token = self.peek()
        found = "end of expression" if token.kind == "end" else repr(token.text)
        return ExpressionSyntaxError(f"Unexpected {found}: {expected}", token.position)

    def nest(self, position: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionSyntaxError(f"Expression nested deeper than {MAX_DEPTH} levels", position)

    def parse(self) -> Expr:
        expr = self.or_expr()
        if self.peek().kind != "end":
            raise self.unexpected("expected 'and', 'or' or the end of the expression")
        return expr

    def or_expr(self) -> Expr:
        return self.chain("or", self.and_expr)

    def and_expr(self) -> Expr:
        return self.chain("and", self.not_expr)

    def chain(self, word: str, operand: Callable[[], Expr]) -> Expr:
        operands = [operand()]
        while self.at(word):
            self.take()
            operands.append(operand())
        return operands[0] if len(operands) == 1 else BoolOp(word, tuple(operands))

    def not_expr(self) -> Expr:
        if not self.at("not"):
            return self.comparison()
        self.nest(self.take().position)
        operand = self.not_expr()
        self.depth -= 1
        return Not(operand)

    def comparison_operator(self) -> str | None:
        token = self.peek()
        if token.kind == "op" or self.at("in") or self.at("contains"):
            return token.text
        if self.at("not") and self.at("in", 1):
            return "not in"
        return None

    def comparison(self) -> Expr:
        left = self.primary()
        op = self.comparison_operator()
        if op is None:
            return left
        position = self.take().position
        if op == "not in":
            self.take()
        right = self.primary()
        if self.comparison_operator() is not None:
            raise ExpressionSyntaxError("Comparisons cannot be chained; combine them with 'and'", self.peek().position)
        return Compare(op, left, right, position)

    def reference(self, token: _Token) -> Reference:
        try:
            return parse_reference(token.text)
        except ReferenceSyntaxError as error:
            raise ExpressionSyntaxError(str(error), token.position) from None

    def primary(self) -> Expr:
        token = self.peek()
        if token.kind == "ref":
            return Ref(self.reference(self.take()))
        if token.kind == "number":
            text = self.take().text
            return Literal(float(text) if any(c in text for c in ".eE") else int(text))
        if token.kind == "string":
            return Literal(_unquote(self.take()))
        if token.kind == "name" and token.text in _CONSTANTS:
            return Literal(_CONSTANTS[self.take().text])
        if self.at("exists"):
            self.take()
            self.expect("(", "'(' after exists")
            if self.peek().kind != "ref":
                raise self.unexpected("exists() takes one reference, e.g. exists(${step-1.output.key})")
            reference = self.reference(self.take())
            self.expect(")", "')' closing exists(")
            return Exists(reference)
        if token.kind == "name" and token.text not in _KEYWORDS:
            message = f"Unknown name '{token.text}': references are written ${{...}} and strings are quoted"
            raise ExpressionSyntaxError(message, token.position)
        if token.text in ("(", "[", "{") and token.kind == "punct":
            self.nest(self.take().position)
            expr = self.group(token.text)
            self.depth -= 1
            return expr
        raise self.unexpected("expected a value")

    def group(self, opening: str) -> Expr:
        if opening == "(":
            expr = self.or_expr()
            self.expect(")", "')'")
            return expr
        closing = "]" if opening == "[" else "}"
        items: list = []
        while not self.at(closing):
            if items:
                self.expect(",", f"',' or '{closing}'")
            if opening == "[":
                items.append(self.or_expr())
                continue
            if self.peek().kind != "string":
                raise self.unexpected("object keys must be quoted strings")
            key = _unquote(self.take())
            self.expect(":", "':' after an object key")
            items.append((key, self.or_expr()))
        self.take()
        return ArrayLiteral(tuple(items)) if opening == "[" else ObjectLiteral(tuple(items))


def parse_expression(text: str) -> Expr:
    if not isinstance(text, str):
        raise ExpressionSyntaxError(f"An expression must be a string, not {json_type(text)}", 0)
    if len(text) > MAX_LENGTH:
        raise ExpressionSyntaxError(f"Expression longer than {MAX_LENGTH} characters", MAX_LENGTH)
    if not text.strip():
        raise ExpressionSyntaxError("Empty expression", 0)
    return _Parser(text).parse()


def references_in(expr: Expr, *, include_exists: bool = True) -> list[Reference]:
    """References in source order; include_exists=False leaves out those guarded by exists()."""
    found, stack = [], [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Ref) or (include_exists and isinstance(node, Exists)):
            found.append(node.reference)
        elif isinstance(node, Not):
            stack.append(node.operand)
        elif isinstance(node, Compare):
            stack.extend((node.right, node.left))
        elif isinstance(node, BoolOp | ArrayLiteral):
            stack.extend(reversed(node.operands if isinstance(node, BoolOp) else node.items))
        elif isinstance(node, ObjectLiteral):
            stack.extend(value for _, value in reversed(node.items))
    return found


def literal_comparisons(expr: Expr) -> list[Compare]:
    """The comparisons whose two sides are literals (their result is known without any input)."""
    found, stack = [], [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Compare):
            sides = (node.left, node.right)
            if all(
                isinstance(side, Literal | ArrayLiteral | ObjectLiteral) and not references_in(side) for side in sides
            ):
                found.append(node)
            stack.extend((node.left, node.right))
        elif isinstance(node, Not):
            stack.append(node.operand)
        elif isinstance(node, BoolOp):
            stack.extend(node.operands)
    return found


def evaluate(expr: Expr | str, resolver: Callable[[Reference], Any]) -> Any:
    """The raw value of an expression; a condition holds when it is truthy."""
    if isinstance(expr, str):
        expr = parse_expression(expr)
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Ref):
        return resolver(expr.reference)
    if isinstance(expr, Exists):
        try:
            resolver(expr.reference)
        except UnresolvedReference:
            return False
        return True
    if isinstance(expr, Not):
        return not evaluate(expr.operand, resolver)
    if isinstance(expr, BoolOp):
        for operand in expr.operands:
            value = evaluate(operand, resolver)
            if bool(value) == (expr.op == "or"):
                return value
        return value
    if isinstance(expr, Compare):
        return _compare(expr, evaluate(expr.left, resolver), evaluate(expr.right, resolver))
    if isinstance(expr, ArrayLiteral):
        return [evaluate(item, resolver) for item in expr.items]
    if isinstance(expr, ObjectLiteral):
        return {key: evaluate(value, resolver) for key, value in expr.items}
    raise TypeError(f"Not an expression: {expr!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return left == right
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(json_equal(left[key], right[key]) for key in left)
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    return left is None and right is None


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _compare(node: Compare, left: Any, right: Any) -> bool:
    op = node.op
    if op in ("==", "!="):
        return json_equal(left, right) == (op == "==")
    if op in _ORDERING:
        if (_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str)):
            return _ORDERING[op](left, right)
        raise ExpressionError(
            f"Cannot compare {json_type(left)} {_preview(left)} with {json_type(right)} {_preview(right)} "
            f"using '{op}' (at position {node.position})"
        )
    container, item = (left, right) if op == "contains" else (right, left)
    if isinstance(container, list | tuple):
        found = any(json_equal(item, element) for element in container)
    elif isinstance(container, str | Mapping):
        if not isinstance(item, str):
            kind = "a string" if isinstance(container, str) else "an object's keys"
            raise ExpressionError(
                f"'{op}' on {kind} needs a string, got {json_type(item)} {_preview(item)} (at position {node.position})"
            )
        found = item in container
    else:
        raise ExpressionError(
            f"'{op}' needs an array, string or object, got {json_type(container)} {_preview(container)} "
            f"(at position {node.position})"
        )
    return not found if op == "not in" else found
