"""Log lines as JSON (LOG_FORMAT=json), with the ids of what the process is handling.

The request middleware knows the request id (core/middleware.py); the executor and the bridge say
which run and step they handle with `log_context(...)`. A filter copies both onto every record, so the
plain format and the JSON one read the same fields; JSON lines leave out what is not known.
"""

import contextlib
import contextvars
from datetime import UTC, datetime

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

_fields: contextvars.ContextVar[dict | None] = contextvars.ContextVar("log_fields", default=None)
CONTEXT_FIELDS = ("run_id", "step_id")


@contextlib.contextmanager
def log_context(**fields):
    """Inside the block, log records carry these fields (run_id, step_id); None values are left out."""
    known = {key: str(value) for key, value in fields.items() if value not in (None, "")}
    token = _fields.set({**(_fields.get() or {}), **known})
    try:
        yield
    finally:
        _fields.reset(token)


def log_note(**fields) -> None:
    """Adds fields learnt inside a `log_context` block (the step of a result) to the rest of it."""
    current = _fields.get()
    if current is not None:
        current.update({key: str(value) for key, value in fields.items() if value not in (None, "")})


def current_fields() -> dict:
    return dict(_fields.get() or {})


class LogContextFilter:
    """Adds run_id and step_id (None when unknown) and, while a span is recorded, trace_id and span_id."""

    def filter(self, record) -> bool:
        fields = _fields.get() or {}
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, fields.get(name))
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid and not hasattr(record, "trace_id"):
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message, then the known ids and any extras."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"asctime": "timestamp", "levelname": "level", "name": "logger"})
        super().__init__(*args or ("%(asctime)s %(levelname)s %(name)s %(message)s",), **kwargs)

    def formatTime(self, record, datefmt=None) -> str:  # noqa: N802 - logging's name
        # ISO 8601 in UTC with milliseconds, which log stores parse without a format string.
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def process_log_record(self, log_data):
        # Unknown ids are left out rather than written as null (or the plain format's "-" request id).
        return {
            key: value
            for key, value in log_data.items()
            if value is not None and not (key == "request_id" and value == "-")
        }


def celery_hook() -> None:
    """With LOG_FORMAT=json, the Celery worker and beat keep the LOGGING setting instead of installing
    their own text handlers (Celery configures nothing when `setup_logging` has a receiver)."""
    from celery.signals import setup_logging
    from django.conf import settings

    if settings.LOG_FORMAT == "json":
        setup_logging.connect(_celery_logging, weak=False, dispatch_uid="core.logs")


def _celery_logging(**kwargs) -> None:
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
