"""Events: one row per run or step status change, in the transaction of the change.

`run_transition` and `step_transition` (runs/services.py) record them, so no change goes unrecorded.
Inside the executor's unit of work they are gathered and inserted in bulk at its end (a step's event
then shows the row as it was saved); elsewhere each is inserted at once. Apps above `runs` (webhooks)
register a sink, called with the new events inside the same transaction: the one listed hook of the
code base, there because `runs` may not import what sits above it.
"""

import contextvars
import functools
from collections.abc import Callable

from core.collect import collecting
from core.db import rows_insert_together, the_row
from runs.choices import RunStatus, StepStatus
from runs.models import RUN_LARGE_FIELDS, Event, Run
from runs.representations import run_data, step_data

RUN_EVENT_TYPES = {status: f"run.{status.lower()}" for status in RunStatus.values}
STEP_EVENT_TYPES = {
    StepStatus.RUNNING: "step.running",
    StepStatus.INPUT_REQUIRED: "step.input_required",  # data.step.input_request: what the agent asks
    StepStatus.COMPLETED: "step.completed",
    StepStatus.FAILED: "step.failed",
    StepStatus.SKIPPED: "step.skipped",
    StepStatus.CANCELLED: "step.cancelled",
}
# What an endpoint may subscribe to: these, "ping" (a test delivery) and wildcards ("run.*", "*").
EVENT_TYPES = sorted({*RUN_EVENT_TYPES.values(), *STEP_EVENT_TYPES.values(), "run.paused", "run.resumed"})

Sink = Callable[[list[Event]], None]
_sinks: list[Sink] = []
_buffer: contextvars.ContextVar[list | None] = contextvars.ContextVar("event_buffer", default=None)


def sink_register(sink: Sink) -> None:
    """Called with every list of new events, inside their transaction (from an AppConfig.ready())."""
    if sink not in _sinks:
        _sinks.append(sink)


def events_collect():
    """Inside this block events are gathered; the caller inserts them with `events_flush` before commit."""
    return collecting(_buffer)


def events_flush(pending: list, with_rows: tuple[list, ...] = ()) -> list[Event]:
    """Inserts the events, and `with_rows` (lists of other rows) in the same round trip, then calls
    the sinks, which see the events saved."""
    events = [item() if callable(item) else item for item in pending]
    rows_insert_together(*with_rows, events)
    if events:
        for sink in _sinks:
            sink(events)
    return events


def _record(item) -> None:
    buffer = _buffer.get()
    if buffer is None:
        events_flush([item])
    else:
        buffer.append(item)


def run_event(run, type_: str | None = None) -> None:
    """The run has just moved to its current status (and is saved); `type_` when the move has a name
    of its own (PAUSED -> RUNNING is `run.resumed`)."""
    _large_fields_read(run)
    _record(
        Event(type=type_ or RUN_EVENT_TYPES[run.status], run_id=run.id, workflow_id=run.workflow_id, data=run_data(run))
    )


def _large_fields_read(run) -> None:
    """The run's input and output, which the executor's row lock leaves unread (they can be large),
    read together for the event's data: read on first use, each was an ORM query of its own (about
    0.7 ms of CPU each, twice for every run that starts)."""
    unread = tuple(name for name in RUN_LARGE_FIELDS if name in run.get_deferred_fields())
    if unread:
        row = the_row(Run, '"id" = %s', [run.pk], omit=_all_but(unread))
        for name in unread:
            setattr(run, name, getattr(row, name) if row is not None else None)


@functools.cache
def _all_but(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The run's other fields (its key aside): what a read of `fields` alone leaves out."""
    return tuple(f.attname for f in Run._meta.concrete_fields if f.attname not in fields and not f.primary_key)


def step_event(run, step, status: str) -> None:
    """A step execution moves to `status`; its data is taken when the event is inserted."""
    if status not in STEP_EVENT_TYPES:
        return  # PENDING (waiting for a retry or for its turn) is no event

    about_run = {
        "run_id": str(run.id),
        "workflow_id": str(run.workflow_id),
        "workflow_name": run.workflow_name,
        "run_status": run.status,
        "attempt": run.attempt,
    }

    def build() -> Event:
        data = {**about_run, "step": {**step_data(step), "status": status}}
        return Event(
            type=STEP_EVENT_TYPES[status],
            run_id=run.id,
            workflow_id=run.workflow_id,
            step_execution_id=step.id,
            data=data,
        )

    _record(build)
