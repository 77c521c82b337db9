"""The executor's unit of work: one transaction under a run's row lock, whose run logs, events and
outbox rows are written in bulk at its end and whose messages are relayed right after the commit."""

import contextlib
import uuid

from django.db import transaction

from core.db import for_update, rows_insert, the_row, the_rows
from core.outbox import outbox_collect
from core.versions import versions_once
from runs.events import events_collect, events_flush
from runs.models import RUN_LARGE_FIELDS, Run, StepExecution
from runs.services import run_logs_collect


@contextlib.contextmanager
def unit_of_work(sent: list):
    """One transaction whose run logs and outbox rows are inserted in bulk at its end; the rows to
    relay after the commit are added to `sent`."""
    with outbox_collect() as collected, run_logs_collect() as logs, events_collect() as events, versions_once():
        with transaction.atomic():
            yield
            queued = len(collected)
            events_flush(events, with_rows=(logs, collected))  # the three INSERTs in one round trip
            rows_insert(collected[queued:])  # what the event sinks queued
    sent.extend(collected)


def locked_run(run_id, *, large: bool = False) -> Run | None:
    """The run, locked for the rest of the transaction; None for an id that is not a run's. Its input
    and output are left unread (they can be large) unless `large`: a run that starts needs its input
    at once (its event and its first steps), and reading it with the lock saves a query."""
    run_id = _run_uuid(run_id)
    if run_id is None:
        return None
    return the_row(Run, '"id" = %s', [run_id], omit=() if large else RUN_LARGE_FIELDS, tail=for_update())


def locked_run_and_step(run_id, correlation_id: str) -> tuple[Run | None, StepExecution | None]:
    """`locked_run`, and then its step execution of `correlation_id` (read once the lock is held), in
    one round trip: an agent result's first two reads."""
    run_id = _run_uuid(run_id)
    if run_id is None:
        return None, None
    run, step = the_rows(
        (Run, '"id" = %s', [run_id], RUN_LARGE_FIELDS, for_update()),
        (StepExecution, '"run_id" = %s AND "correlation_id" = %s', [run_id, correlation_id], (), "LIMIT 1"),
    )
    return run, step if run is not None else None


def _run_uuid(run_id) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(run_id))
    except ValueError:
        return None
