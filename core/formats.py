"""How values are written out everywhere (API bodies, events, Kafka messages)."""

from datetime import UTC


def iso_datetime(value) -> str | None:
    """A datetime as every response shows it: ISO 8601 in UTC with a 'Z', as DRF renders it.

    Done directly because DRF's field looks the current time zone up on every call.
    """
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
