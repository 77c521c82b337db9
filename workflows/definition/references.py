"""References to run data and the templates that hold them.

A reference is ``${workflow.input.a.b}``, ``${<step_id>.output.items[0].name}`` (also written
``${steps.<step_id>.output...}``) or ``${loop.item...}`` / ``${loop.index}`` / ``${loop.total}`` /
``${loop.is_first}`` / ``${loop.is_last}``. Negative indexes count from the end. A step named
``workflow``, ``loop`` or ``steps`` stays addressable because the segment after the head decides
(``${loop.output}`` is the output of a step called ``loop``).

A template is any JSON value whose strings may hold references. A string that is exactly one
reference keeps the referenced JSON type; any other string is interpolation. ``$${`` writes a
literal ``${`` so that text which merely looks like a reference can still be passed to an agent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

STEP_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,100}")
LOOP_FIELDS = ("item", "index", "total", "is_first", "is_last")

Path = tuple[str | int, ...]

# Keys are permissive because agent outputs use arbitrary JSON keys; only the characters that
# delimit references and paths are excluded.
_KEY = r"[^\s.\[\]{}()$'\"]+"
_HEAD = re.compile(_KEY)
_SEGMENT = re.compile(rf"\.({_KEY})|\[\s*(-?\d+)\s*\]")
_OPEN = re.compile(r"\$\$\{|\$\{")


class ReferenceSyntaxError(ValueError):
    """A reference (or a template holding one) is malformed."""


class UnresolvedReference(LookupError):
    """A reference names data that does not exist in the run context."""

    def __init__(self, reference: Reference, detail: str):
        super().__init__(f"{reference.text}: {detail}")
        self.reference = reference
        self.detail = detail


@dataclass(frozen=True)
class Reference:
    root: str  # "input", "step" or "loop"
    step_id: str | None = None
    path: Path = ()  # for "loop", path[0] is the loop field (item, index, ...)

    @property
    def text(self) -> str:
        head = {"input": "workflow.input", "step": f"{self.step_id}.output", "loop": "loop"}[self.root]
        return "${" + head + format_path(self.path) + "}"

    def __str__(self) -> str:
        return self.text


def format_path(path: Path) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def parse_reference(text: str) -> Reference:
    """Parse ``${...}`` or the bare text inside it."""
    inner = text.strip()
    if inner.startswith("${") and inner.endswith("}"):
        inner = inner[2:-1].strip()
    shown = "${" + inner + "}"
    head = _HEAD.match(inner)
    if not head:
        raise ReferenceSyntaxError(f"Invalid reference '{shown}': expected workflow.input, <step_id>.output or loop.*")
    segments: list[str | int] = [head.group()]
    pos = head.end()
    while pos < len(inner):
        match = _SEGMENT.match(inner, pos)
        if not match:
            raise ReferenceSyntaxError(f"Invalid reference '{shown}': unexpected {inner[pos]!r} at position {pos}")
        segments.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    return _interpret(shown, segments)


def _interpret(shown: str, segments: list[str | int]) -> Reference:
    head, rest = segments[0], segments[1:]
    following = rest[0] if rest else None
    if head == "workflow" and following != "output":
        if following != "input":
            raise ReferenceSyntaxError(f"Invalid reference '{shown}': 'workflow' must be followed by '.input'")
        return Reference("input", None, tuple(rest[1:]))
    if head == "loop" and following != "output":
        if following not in LOOP_FIELDS:
            fields = ", ".join(f"loop.{name}" for name in LOOP_FIELDS)
            raise ReferenceSyntaxError(f"Invalid reference '{shown}': expected one of {fields}")
        if following != "item" and len(rest) > 1:
            raise ReferenceSyntaxError(f"Invalid reference '{shown}': loop.{following} has no fields")
        return Reference("loop", None, tuple(rest))
    if head == "steps" and following != "output":
        if not isinstance(following, str):
            raise ReferenceSyntaxError(f"Invalid reference '{shown}': expected steps.<step_id>.output")
        head, rest = following, rest[1:]
        following = rest[0] if rest else None
    if following != "output":
        raise ReferenceSyntaxError(f"Invalid reference '{shown}': expected '{head}.output' after the step id")
    if not isinstance(head, str) or not STEP_ID_RE.fullmatch(head):
        raise ReferenceSyntaxError(f"Invalid reference '{shown}': {head!r} is not a valid step id")
    return Reference("step", head, tuple(rest[1:]))


def split_template(text: str) -> list[str | Reference]:
    """Split a string into literal text and references, in order."""
    if "${" not in text:
        return [text] if text else []
    parts: list[str | Reference] = []
    literal: list[str] = []
    pos = 0
    while match := _OPEN.search(text, pos):
        literal.append(text[pos : match.start()])
        pos = match.end()
        if match.group() == "$${":
            literal.append("${")
            continue
        end = text.find("}", pos)
        if end == -1:
            raise ReferenceSyntaxError(f"Unterminated reference in {text!r}: '${{' without a closing '}}'")
        if any(literal):
            parts.append("".join(literal))
        literal = []
        parts.append(parse_reference(text[pos:end]))
        pos = end + 1
    literal.append(text[pos:])
    if any(literal):
        parts.append("".join(literal))
    return parts


def iter_strings(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every string inside a JSON value with its path, in document order (without recursion)."""
    stack: list[tuple[Path, Any]] = [(path, value)]
    while stack:
        here, item = stack.pop()
        if isinstance(item, str):
            yield here, item
        elif isinstance(item, Mapping):
            stack.extend((here + (key,), item[key]) for key in reversed(list(item)))
        elif isinstance(item, list | tuple):
            stack.extend((here + (index,), item[index]) for index in range(len(item) - 1, -1, -1))


def find_references(value: Any) -> list[Reference]:
    """Every reference in a JSON value; raises ReferenceSyntaxError on the first malformed one."""
    return [part for _, text in iter_strings(value) for part in split_template(text) if isinstance(part, Reference)]


def _context_get(context: Any, name: str) -> Any:
    if isinstance(context, Mapping):
        return context.get(name)
    return getattr(context, name, None)


def resolve_reference(reference: Reference, context: Any) -> Any:
    """The value a reference names; context gives ``input``, ``outputs`` ({step_id: output}) and ``loop``."""
    if reference.root == "input":
        return _walk(reference, _context_get(context, "input"), "the workflow input", reference.path)
    if reference.root == "step":
        outputs = _context_get(context, "outputs")
        outputs = {} if outputs is None else outputs  # not `or`: a lazy mapping may look empty
        if reference.step_id not in outputs:
            # A mapping of outputs may know why a step has none (skipped, failed, still running).
            why = getattr(outputs, "why_missing", None)
            default = f"step '{reference.step_id}' has no output (it has not finished)"
            raise UnresolvedReference(reference, why(reference.step_id) if why else default)
        return _walk(reference, outputs[reference.step_id], f"{reference.step_id}'s output", reference.path)
    loop = _context_get(context, "loop")
    if loop is None:
        raise UnresolvedReference(reference, "there is no loop context (the step is not inside a loop body)")
    name = reference.path[0]
    if name not in loop:
        raise UnresolvedReference(reference, f"the loop context has no '{name}'")
    return _walk(reference, loop[name], f"loop.{name}", reference.path[1:])


def _walk(reference: Reference, value: Any, label: str, path: Path) -> Any:
    for depth, part in enumerate(path):
        where = label if depth == 0 else f"{label} at '{format_path(path[:depth]).lstrip('.')}'"
        # Older files write list indexes as keys (items.0.name); accept them on lists only.
        as_index = isinstance(part, int) or (isinstance(value, list) and re.fullmatch(r"-?\d+", part) is not None)
        if as_index:
            if not isinstance(value, list):
                raise UnresolvedReference(reference, f"{where} is {json_type(value)}, not an array (index [{part}])")
            index = int(part)
            if not -len(value) <= index < len(value):
                raise UnresolvedReference(reference, f"{where} has no index {index} (length {len(value)})")
            value = value[index]
        elif not isinstance(value, Mapping):
            raise UnresolvedReference(reference, f"{where} is {json_type(value)}, not an object (key '{part}')")
        elif part not in value:
            raise UnresolvedReference(reference, f"{where} has no key '{part}'")
        else:
            value = value[part]
    return value


def render(value: Any) -> str:
    """How a value appears inside interpolated text: JSON, except that strings are inserted as they are."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def resolve_value(value: Any, context: Any) -> Any:
    """Resolve every template in a JSON value; literals come back unchanged."""
    if isinstance(value, str):
        parts = split_template(value)
        if len(parts) == 1 and isinstance(parts[0], Reference):
            return resolve_reference(parts[0], context)
        return "".join(render(resolve_reference(p, context)) if isinstance(p, Reference) else p for p in parts)
    if isinstance(value, Mapping):
        return {key: resolve_value(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [resolve_value(item, context) for item in value]
    return value
