"""Writes to runs: execute, retry, cancel, and the one function every run status change goes through."""

import contextvars
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from jsonschema import Draft202012Validator
from rest_framework.exceptions import ErrorDetail

from audit.services import audit_record
from core import kafka
from core.api.exceptions import Conflict, UnprocessableEntity
from core.collect import collecting
from core.outbox import outbox_enqueue
from runs.choices import ACTIVE_RUN, ACTIVE_STEP, RETRYABLE_RUN, LogLevel, LogSource, RunStatus, StepStatus
from runs.models import Run, RunLog, StepExecution
from workflows.choices import WorkflowStatus
from workflows.models import Workflow

RUN_EVENT = "workflow"  # the step_id of run-level monitoring updates


def _username(user) -> str:
    return user.get_username() if user is not None and user.is_authenticated else ""


_log_buffer: contextvars.ContextVar[list | None] = contextvars.ContextVar("run_log_buffer", default=None)


def run_logs_collect():
    """Inside this block run_log gathers entries, unsaved, for the caller to bulk_create before commit."""
    return collecting(_log_buffer)


def run_log(
    run: Run, message: str, *, source: str, level: str = LogLevel.INFO, step_id: str | None = None, data=None
) -> RunLog:
    entry = RunLog(run=run, message=message, source=source, level=level, step_id=step_id, data=data or {})
    buffer = _log_buffer.get()
    if buffer is None:
        entry.save()
    else:
        buffer.append(entry)
    return entry


def monitoring_publish(run: Run, *, status: str, step_id: str = RUN_EVENT, step_name: str = "", metadata=None):
    payload = {
        "run_id": str(run.id),
        "step_id": step_id,
        "step_name": step_name or (run.workflow_name if step_id == RUN_EVENT else step_id),
        "status": status,
        "timestamp": kafka.now_iso(),
        "metadata": {"attempt": run.attempt, **(metadata or {})},
    }
    outbox_enqueue(topic=settings.KAFKA_MONITORING_TOPIC, key=str(run.id), payload=payload)


def lease_until(seconds: int | None = None):
    return timezone.now() + timedelta(seconds=seconds or settings.EXECUTOR_LEASE_SECONDS)


def execution_request(run: Run) -> dict:
    return {
        "message_type": "execution_request",
        "run_id": str(run.id),
        "workflow_plan": run.plan,
        "input_data": run.input_data,
        "timestamp": kafka.now_iso(),
        "attempt": run.attempt,
        "message_id": kafka.new_message_id(),
    }


def execution_request_enqueue(run: Run) -> None:
    outbox_enqueue(topic=settings.KAFKA_EXECUTION_TOPIC, key=str(run.id), payload=execution_request(run))


def run_transition(run: Run, status: str, *, source: str, error: str = "", output=None, detail: str = "") -> None:
    """Moves a locked run to `status`: timestamps, run log, monitoring update (webhooks hook in here).

    The caller holds the run's row lock and has checked that the move is allowed.
    """
    now = timezone.now()
    previous = run.status
    run.status = status
    if status == RunStatus.RUNNING:
        run.started_at = run.started_at or now
        run.lease_expires_at = lease_until()
    elif status == RunStatus.PENDING:
        run.completed_at = run.cancelled_at = None
        run.cancelled_by = run.error_message = ""
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
    run.save()
    level = LogLevel.ERROR if status == RunStatus.FAILED else LogLevel.INFO
    message = f"Run {status.lower()}" + (f": {detail or error}" if (detail or error) else "")
    run_log(run, message, source=source, level=level, data={"from": previous, "to": status, "attempt": run.attempt})
    if status != RunStatus.PENDING:
        metadata = {"error": error} if error else {}
        monitoring_publish(run, status=status, metadata=metadata)


def run_input_check(workflow: Workflow, input_data) -> None:
    schema = workflow.definition.get("input_schema")
    if not schema:
        return
    errors: dict[str, list] = {}
    for error in Draft202012Validator(schema).iter_errors(input_data):
        path = ".".join(["input_data", *(str(part) for part in error.absolute_path)])
        errors.setdefault(path, []).append(ErrorDetail(error.message, code=str(error.validator)))
    if errors:
        raise UnprocessableEntity(errors)


def run_plan(workflow: Workflow) -> dict:
    return {"workflow_id": str(workflow.id), "version": workflow.version, **workflow.definition}


def run_execute(*, workflow: Workflow, input_data: dict, user) -> Run:
    """Creates a PENDING run pinned to the workflow's current version and queues its execution request."""
    if workflow.status == WorkflowStatus.INACTIVE:
        raise Conflict(f"Workflow {workflow.name!r} is inactive; activate it to run it.")
    run_input_check(workflow, input_data)
    with transaction.atomic():
        run = Run.objects.create(
            workflow=workflow,
            workflow_name=workflow.name,
            workflow_version=workflow.version,
            plan=run_plan(workflow),
            input_data=input_data,
            triggered_by=_username(user),
            lease_expires_at=lease_until(),
        )
        run_log(run, f"Run created from {workflow.name!r} version {workflow.version}", source=LogSource.API)
        audit_record(
            user=user,
            action="run.execute",
            resource_type="run",
            resource_id=run.pk,
            changes={"workflow_id": [None, str(workflow.pk)], "workflow_version": [None, workflow.version]},
            input_data=input_data,
        )
        execution_request_enqueue(run)
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
    return StepExecution.objects.filter(run=run, status__in=ACTIVE_STEP).update(
        status=StepStatus.CANCELLED, error_message=reason, completed_at=timezone.now()
    )


def run_cancel(*, run: Run, user, reason: str = "") -> Run:
    """Marks the run CANCELLED at once; the executor dispatches nothing more and ignores late results."""
    with transaction.atomic():
        run = _locked(run)
        if run.status not in ACTIVE_RUN:
            raise Conflict(f"Only PENDING or RUNNING runs can be cancelled; this run is {run.status}.")
        previous = run.status
        run.cancelled_by = _username(user)
        steps_cancel(run, reason="Run cancelled")
        run_transition(run, RunStatus.CANCELLED, source=LogSource.API, detail=reason or f"by {run.cancelled_by}")
        audit_record(
            user=user,
            action="run.cancel",
            resource_type="run",
            resource_id=run.pk,
            changes={"status": [previous, RunStatus.CANCELLED]},
        )
        payload = {
            "message_type": "cancellation_request",
            "run_id": str(run.id),
            "cancelled_by": run.cancelled_by,
            "reason": reason,
            "timestamp": kafka.now_iso(),
            "message_id": kafka.new_message_id(),
        }
        outbox_enqueue(topic=settings.KAFKA_CANCELLATION_TOPIC, key=str(run.id), payload=payload)
    return run
