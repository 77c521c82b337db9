"""Runs and step executions as clients see them: the API's bodies, and the `data` of webhook and live
events. One home, so an event and a `GET` never disagree; the API serializers declare the fields and
tests/core/test_representations.py holds them to these."""

from core.formats import iso_datetime


def run_data(run) -> dict:
    duration = None
    if run.started_at and run.completed_at:
        duration = int((run.completed_at - run.started_at).total_seconds() * 1000)
    return {
        "id": str(run.id),
        "run_id": str(run.id),
        "workflow_id": str(run.workflow_id),
        "workflow_name": run.workflow_name,
        "workflow_version": run.workflow_version,
        "status": run.status,
        "input_data": run.input_data,
        "output_data": run.output_data,
        "error_message": run.error_message or None,
        "attempt": run.attempt,
        "triggered_by": run.triggered_by,
        "created_at": iso_datetime(run.created_at),
        "updated_at": iso_datetime(run.updated_at),
        "started_at": iso_datetime(run.started_at),
        "completed_at": iso_datetime(run.completed_at),
        "cancelled_at": iso_datetime(run.cancelled_at),
        "cancelled_by": run.cancelled_by or None,
        "cancel_reason": run.cancel_reason or None,
        "duration_ms": duration,
        "waiting_for_input": bool(run.waiting_for_input),
        "rerun_of": str(run.rerun_of_id) if run.rerun_of_id else None,
    }


def step_data(step) -> dict:
    return {
        "id": str(step.id),
        "run_id": str(step.run_id),
        "step_id": step.step_id,
        "step_type": step.step_type,
        "agent_name": step.agent_name or None,
        "status": step.status,
        "attempt": step.attempt,
        "try_number": step.try_number,
        "iteration": step.iteration,
        "branch": step.branch or None,
        "scope": step.scope or None,
        "parent_id": str(step.parent_id) if step.parent_id else None,
        "input_data": step.input_data,
        "output_data": step.output_data,
        "error_message": step.error_message or None,
        "task_id": step.task_id or None,
        "agent_task_id": step.agent_task_id,
        "agent_context_id": step.agent_context_id,
        # The answer is kept on the row for sending it again, never shown (it may be a sign-in).
        "input_request": {k: v for k, v in step.input_request.items() if k != "reply"} if step.input_request else None,
        "started_at": iso_datetime(step.started_at),
        "completed_at": iso_datetime(step.completed_at),
        "duration_ms": step.duration_ms,
        "reused": bool(step.reused),
    }
