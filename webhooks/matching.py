"""Which event types an endpoint may subscribe to, and whether an event matches a subscription."""

from core.errors import FieldError
from runs.events import EVENT_TYPES
from webhooks.choices import PING

# "run.*" and "step.*" stand for every type with that prefix; "*" for every type.
WILDCARDS = sorted({"*", *(f"{name.split('.')[0]}.*" for name in EVENT_TYPES)})
SUBSCRIBABLE = frozenset({*EVENT_TYPES, *WILDCARDS, PING})


def event_types_problems(values: list[str], *, field: str = "event_types") -> list[FieldError]:
    """Unknown types and patterns, each with its index in the list."""
    if not values:
        return [FieldError(field, "Subscribe to at least one event type (or '*').", "required")]
    return [
        FieldError(
            f"{field}.{index}",
            f"Unknown event type {value!r}. Known: {', '.join(sorted(SUBSCRIBABLE))}.",
            "invalid_choice",
        )
        for index, value in enumerate(values)
        if value not in SUBSCRIBABLE
    ]


def subscribed(patterns, event_type: str) -> bool:
    prefix = event_type.split(".")[0] + ".*"
    return any(pattern in ("*", event_type, prefix) for pattern in patterns)
