"""Writes to runs: execute, retry, cancel, and the one function every run status change goes through."""

import contextvars
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from jsonschema import Draft202012Validator

from audit.services import audit_event, audit_record
from core.collect import collecting
from core.db import db_params, placeholders, row_save, rows_insert, rows_of
from core.errors import Conflict, FieldError, InvalidInput
from core.outbox import outbox_collect, outbox_enqueue
from core.versions import versions_once
from runs import messages
from runs.agents_ready import agents_ready_check
from runs.choices import (
    CANCELLABLE_RUN,
    CANCELLABLE_STEP,
    NEW,
    RETRYABLE_RUN,
    STARTED_STEP,
    LogLevel,
    LogSource,
    RunStatus,
    StepStatus,
    run_transition_check,
    step_transition_check,
)
from runs.events import events_collect, events_flush, run_event, step_event
from runs.messages import RUN_EVENT
from runs.models import Run, RunLog, StepExecution
from workflows.choices import WorkflowStatus
from workflows.models import Workflow


def _username(user) -> str:
    return user.get_username() if user is not None and user.is_authenticated else ""


_log_buffer: contextvars.ContextVar[list | None] = contextvars.ContextVar("run_log_buffer", default=None)


def run_logs_collect():
    """Inside this block run_log gathers entries, unsaved, for the caller to bulk_create before commit."""
    return collecting(_log_buffer)


def run_log(
    run: Run,
    message: str,
    *,
    source: str,
    level: str = LogLevel.INFO,
    step_id: str | None = None,
    data=None,
    at=None,
) -> RunLog:
    """One entry of the run's log, stamped `at` (when what it tells happened; default now)."""
    entry = RunLog(run=run, message=message, source=source, level=level, step_id=step_id, data=data or {})
    if at is not None:
        entry.timestamp = at
    buffer = _log_buffer.get()
    if buffer is None:
        rows_insert([entry])
    else:
        buffer.append(entry)
    return entry


def monitoring_publish(run: Run, *, status: str, step_id: str = RUN_EVENT, step_name: str = "", metadata=None):
    payload = messages.monitoring_update(run, status=status, step_id=step_id, step_name=step_name, metadata=metadata)
    outbox_enqueue(topic=settings.KAFKA_MONITORING_TOPIC, key=str(run.id), payload=payload)


def lease_until(seconds: int | None = None):
    return timezone.now() + timedelta(seconds=seconds or settings.EXECUTOR_LEASE_SECONDS)


def execution_request_enqueue(run: Run) -> None:
    outbox_enqueue(topic=settings.KAFKA_EXECUTION_TOPIC, key=str(run.id), payload=messages.execution_request(run))


def run_transition(run: Run, status: str, *, source: str, error: str = "", output=None, detail: str = "") -> None:
    """Moves a locked run to `status`: timestamps, run log, monitoring update (webhooks hook in here).

    The caller holds the run's row lock. A move the transition table does not list raises
    TransitionNotAllowed (a Conflict) and changes nothing.
    """
    run_transition_check(run.status, status)
    now = timezone.now()
    previous = run.status
    run.status = status
    run.recoveries = 0  # it moved: the next recovery starts from a short lease again
    if status not in (RunStatus.RUNNING, RunStatus.PAUSED) and run.waiting_for_input:
        run.waiting_for_input = False  # its waiting steps are cancelled with it (steps_cancel)
    if status == RunStatus.RUNNING:
        run.started_at = run.started_at or now
        run.lease_expires_at = lease_until()
    elif status == RunStatus.PAUSED:
        run.lease_expires_at = None  # no lease: recovery must not dispatch a paused run (runs/pause.py)
    elif status == RunStatus.PENDING:
        run.completed_at = run.cancelled_at = None
        run.cancelled_by = run.error_message = ""
        run.cancel_reason = None
        run.lease_expires_at = lease_until()
    else:
        run.completed_at = now
        run.lease_expires_at = None
        if status == RunStatus.COMPLETED:
            run.output_data = output
        if status == RunStatus.FAILED:
            run.error_message = error
        if status == RunStatus.CANCELLED:
            run.cancelled_at = now
    row_save(run)  # the UPDATE built once (save() compiled it again: 9 % of the executor)
    resumed = previous == RunStatus.PAUSED and status == RunStatus.RUNNING
    run_event(run, type_="run.resumed" if resumed else None)
    level = LogLevel.ERROR if status == RunStatus.FAILED else LogLevel.INFO
    message = f"Run {'resumed' if resumed else status.lower()}" + (f": {detail or error}" if (detail or error) else "")
    run_log(run, message, source=source, level=level, data={"from": previous, "to": status, "attempt": run.attempt})
    if status != RunStatus.PENDING:
        metadata = {"error": error} if error else {"resumed": True} if resumed else {}
        monitoring_publish(run, status=status, metadata=metadata)


def step_transition(execution: StepExecution, status: str, *, run: Run) -> None:
    """Sets a step execution's new status (unsaved; the caller saves with its other fields), after
    checking the move against the transition table, and records its event. A row not saved yet may
    start in the statuses a new execution may have."""
    step_transition_check(NEW if execution._state.adding else execution.status, status)
    execution.status = status
    step_event(run, execution, status)


def run_input_check(workflow: Workflow, input_data) -> None:
    input_schema_check(workflow.definition.get("input_schema"), input_data)


def input_schema_check(schema: dict | None, input_data) -> None:
    if not schema:
        return
    errors = [
        FieldError(".".join(["input_data", *map(str, error.absolute_path)]), error.message, str(error.validator))
        for error in Draft202012Validator(schema).iter_errors(input_data)
    ]
    if errors:
        raise InvalidInput(errors)


def run_plan(workflow: Workflow) -> dict:
    return {"workflow_id": str(workflow.id), "version": workflow.version, **workflow.definition}


def run_execute(*, workflow: Workflow, input_data: dict, user, triggered_by: str | None = None) -> Run:
    """Creates a PENDING run pinned to the workflow's current version and queues its execution request.

    `triggered_by` defaults to the user's name; schedules pass `schedule:<name>`."""
    # The agents' statuses and the webhook endpoints are kept tables: their versions in one query.
    with versions_once():
        if workflow.status == WorkflowStatus.INACTIVE:
            raise Conflict(f"Workflow {workflow.name!r} is inactive; activate it to run it.")
        agents_ready_check(workflow.definition, workflow_name=workflow.name)
        run_input_check(workflow, input_data)
        with transaction.atomic():
            run = Run(
                workflow=workflow,
                workflow_name=workflow.name,
                workflow_version=workflow.version,
                plan=run_plan(workflow),
                input_data=input_data,
                triggered_by=_username(user) if triggered_by is None else triggered_by,
                lease_expires_at=lease_until(),
            )
            audit = audit_event(
                user=user,
                action="run.execute",
                resource_type="run",
                resource_id=run.pk,
                changes={"workflow_id": [None, str(workflow.pk)], "workflow_version": [None, workflow.version]},
                input_data=input_data,
            )
            with run_logs_collect() as logs, events_collect() as events, outbox_collect(worker=True) as queued:
                run_log(run, f"Run created from {workflow.name!r} version {workflow.version}", source=LogSource.API)
                run_event(run)  # run.pending
                execution_request_enqueue(run)
            # The run and its four rows in one round trip (SQL built once): the inserts were a third of
            # an execute's CPU, and each round trip of its own about 0.3 ms more.
            events_flush(events, with_rows=([run], logs, [audit], queued))
        return run


def _locked(run: Run) -> Run:
    return Run.objects.select_for_update().get(pk=run.pk)


def run_retry(*, run: Run, user) -> Run:
    """Sends a failed or cancelled run back to PENDING with attempt + 1; completed steps keep their outputs."""
    with transaction.atomic():
        run = _locked(run)
        if run.status not in RETRYABLE_RUN:
            raise Conflict(f"Only FAILED or CANCELLED runs can be retried; this run is {run.status}.")
        previous = {"status": run.status, "attempt": run.attempt}
        run.attempt += 1
        run_transition(run, RunStatus.PENDING, source=LogSource.API, detail=f"retry, attempt {run.attempt}")
        audit_record(
            user=user,
            action="run.retry",
            resource_type="run",
            resource_id=run.pk,
            changes={"status": [previous["status"], run.status], "attempt": [previous["attempt"], run.attempt]},
        )
        execution_request_enqueue(run)
    return run


def steps_cancel(run: Run, *, reason: str) -> int:
    # One UPDATE for all of them: every status it picks may move to CANCELLED (the table says so).
    # Those that were running get their event (a try waiting for its turn or its retry never started).
    # SQL built once: every run's end comes here, most with nothing left to cancel (the ORM compiled
    # both queries each time: 6 % of the executor's CPU).
    running = rows_of(StepExecution, _RUNNING_STEPS, [run.pk, *STARTED_STEP])
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_CANCEL_STEPS, db_params([StepStatus.CANCELLED, reason, now, run.pk, *CANCELLABLE_STEP]))
        count = cursor.rowcount
    durations_stamp(running, now)
    for step in running:
        step.status, step.error_message, step.completed_at = StepStatus.CANCELLED, reason, now
        step_event(run, step, StepStatus.CANCELLED)
    agent_tasks_cancel(run, running, reason=reason)
    return count


_RUNNING_STEPS = f'"run_id" = %s AND "status" IN ({placeholders(STARTED_STEP)})'
_CANCEL_STEPS = (
    'UPDATE "runs_stepexecution" SET "status" = %s, "error_message" = %s, "completed_at" = %s '  # noqa: S608 - placeholders
    f'WHERE "run_id" = %s AND "status" IN ({placeholders(CANCELLABLE_STEP)})'
)


def agent_tasks_cancel(run: Run, rows, *, reason: str) -> None:
    """Asks the bridge to cancel the agents' A2A tasks still open for these steps (best effort, logged
    by the bridge; in the same transaction as the steps' end)."""
    for row in rows:
        if row.agent_task_id:
            payload = messages.agent_task_cancel(run, row, reason=reason)
            outbox_enqueue(topic=settings.KAFKA_TASKS_TOPIC, key=str(run.id), payload=payload)


def durations_stamp(rows: list[StepExecution], now) -> None:
    """Stamps the end of started rows a bulk UPDATE has just ended: their durations differ, so one
    more statement (the rows that never started keep none)."""
    for row in rows:
        row.end_at(now)
    if rows:
        StepExecution.objects.bulk_update(rows, ["duration_ms"])


def run_cancel(*, run: Run, user, reason: str = "") -> Run:
    """Marks the run CANCELLED at once; the executor dispatches nothing more and ignores late results."""
    with transaction.atomic():
        run = _locked(run)
        if run.status not in CANCELLABLE_RUN:
            raise Conflict(f"Only PENDING, RUNNING or PAUSED runs can be cancelled; this run is {run.status}.")
        previous = run.status
        run.cancelled_by = _username(user)
        run.cancel_reason = reason or None
        steps_cancel(run, reason="Run cancelled")
        run_transition(run, RunStatus.CANCELLED, source=LogSource.API, detail=reason or f"by {run.cancelled_by}")
        audit_record(
            user=user,
            action="run.cancel",
            resource_type="run",
            resource_id=run.pk,
            changes={"status": [previous, RunStatus.CANCELLED]},
        )
        payload = messages.cancellation_request(run, reason=reason)
        outbox_enqueue(topic=settings.KAFKA_CANCELLATION_TOPIC, key=str(run.id), payload=payload)
    return run
