"""Human input: a step whose agent asks a person (A2A `input-required` / `auth-required`).

The step waits as INPUT_REQUIRED with the agent's question in `input_request`, its deadline the
step's `input_timeout_seconds`, and the run shows `waiting_for_input`. An answer
(`POST /runs/{id}/steps/{sid}/respond`, or the admin) puts the step back to RUNNING and queues a
reply task: the same correlation id (the same try), a new task id, the agent's task and context ids
and the answer, which the bridge sends to the agent in that same task. No answer in time fails the
step. Callers hold the run's row lock (the executor's unit of work, or `step_respond`'s own).
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents.choices import DEFAULT_TIMEOUT_MS
from agents.models import Agent
from audit.services import audit_record
from core.db import storable
from core.errors import Conflict, InvalidInput, NotFound
from core.formats import iso_datetime
from core.outbox import outbox_enqueue
from runs import messages
from runs.choices import LogLevel, LogSource, RunStatus, StepStatus
from runs.models import Run, StepExecution
from runs.services import agent_tasks_cancel, lease_until, monitoring_publish, run_log, step_transition

DEFAULT_INPUT_TIMEOUT_SECONDS = 86_400
STATES = ("input-required", "auth-required")


def input_timeout_seconds(run: Run, execution: StepExecution) -> int:
    step = (run.plan.get("steps") or {}).get(execution.step_id) or {}
    return int(step.get("input_timeout_seconds") or DEFAULT_INPUT_TIMEOUT_SECONDS)


def agent_task_remember(execution: StepExecution, result: dict) -> list[str]:
    """Sets the agent's task and context ids a result names (the bridge may have written them
    already: then this changes nothing) and returns the fields it changed, unsaved: the caller saves
    them with the result's own UPDATE (an UPDATE of their own was 5 % of the executor's CPU)."""
    changed = []
    for field in ("agent_task_id", "agent_context_id"):
        value = result.get(field)
        if isinstance(value, str) and value and value[:300] != getattr(execution, field):
            setattr(execution, field, storable(value)[:300])
            changed.append(field)
    return changed


def stale_answer(execution: StepExecution, result: dict) -> bool:
    """A copy of a result from before the step's last answer (its reply task has a new task id): it
    must not ask again or finish the step."""
    answered = bool(execution.input_request and execution.input_request.get("responded_at"))
    task_id = result.get("task_id")
    return answered and bool(task_id) and task_id != execution.task_id


def waiting_set(run: Run, waiting: bool) -> None:
    if bool(run.waiting_for_input) != waiting:
        run.waiting_for_input = waiting
        run.save(update_fields=["waiting_for_input", "updated_at"])


def waiting_refresh(run: Run) -> None:
    """`waiting_for_input` is true while any step of the run's current attempt waits for a person."""
    waiting = run.steps.filter(status=StepStatus.INPUT_REQUIRED, attempt=run.attempt).exists()
    waiting_set(run, waiting)


def input_required_record(decider, execution: StepExecution, result: dict) -> None:
    """The agent asks for input: the step waits (RUNNING -> INPUT_REQUIRED) until an answer or its deadline."""
    run, now = decider.run, timezone.now()
    output = result.get("output_data") if isinstance(result.get("output_data"), dict) else {}
    state = output.get("state") if output.get("state") in STATES else "input-required"
    message = output.get("message")
    data = output.get("data")
    seconds = input_timeout_seconds(run, execution)
    step_transition(execution, StepStatus.INPUT_REQUIRED, run=run)
    execution.input_request = storable(
        {
            "state": state,
            "message": message if isinstance(message, str) else None,
            "data": data if isinstance(data, dict) else {},
            "requested_at": iso_datetime(now),
        }
    )
    execution.due_at = now + timedelta(seconds=seconds)
    decider.deadlines.append(execution.due_at)
    execution.save(update_fields=["status", "input_request", "due_at"])
    waiting_set(run, True)
    where = decider.where(execution)
    run_log(
        run,
        f"Step '{execution.step_id}' waits for input ({state})"
        + (f": {execution.input_request['message']}" if execution.input_request["message"] else ""),
        source=LogSource.EXECUTOR,
        step_id=execution.step_id,
        data={"task_id": execution.task_id, "input_timeout_seconds": seconds, **where},
    )
    monitoring_publish(
        run, status=StepStatus.INPUT_REQUIRED, step_id=execution.step_id, metadata={"state": state, **where}
    )


def input_expire(decider, execution: StepExecution, now) -> None:
    """Nobody answered by the step's deadline: it fails (no retry: a new try would only ask again)."""
    run = decider.run
    seconds = input_timeout_seconds(run, execution)
    step_transition(execution, StepStatus.FAILED, run=run)
    execution.end_at(now)
    execution.error_message = f"Timed out: no input within {seconds} s (agent '{execution.agent_name}' asked for it)"
    execution.save(update_fields=["status", "completed_at", "duration_ms", "error_message"])
    waiting_refresh(run)
    agent_tasks_cancel(run, [execution], reason="no input in time")  # the agent's task is still open
    where = decider.where(execution)
    run_log(
        run,
        f"Step '{execution.step_id}': {execution.error_message}",
        source=LogSource.EXECUTOR,
        level=LogLevel.WARNING,
        step_id=execution.step_id,
        data=where,
    )
    metadata = {"error": execution.error_message, **where}
    monitoring_publish(run, status=StepStatus.FAILED, step_id=execution.step_id, metadata=metadata)
    decider.advance(execution)


def reply_check(text, data) -> None:
    if text is None and data is None:
        raise InvalidInput.one("text", "Give 'text' or 'data' (or both): the answer for the agent.", "required")


def step_respond(*, run: Run, step_execution_id, text: str | None, data: dict | None, user) -> StepExecution:
    """Answers a step waiting for input: back to RUNNING with a new deadline, the reply task queued."""
    reply_check(text, data)
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        execution = run.steps.filter(pk=step_execution_id).first()
        if execution is None:
            raise NotFound(f"Step execution {step_execution_id!s} not found in run {run.id}.")
        if execution.status != StepStatus.INPUT_REQUIRED or run.status != RunStatus.RUNNING:
            raise Conflict(
                f"Only a step waiting for input (INPUT_REQUIRED) in a running run can be answered; "
                f"this step is {execution.status}, the run {run.status}."
            )
        now = timezone.now()
        username = user.get_username() if user is not None and user.is_authenticated else ""
        step_transition(execution, StepStatus.RUNNING, run=run)
        # A step that asked has both; a row made by hand (or an older writer) may not: never a 500.
        execution.started_at = execution.started_at or now
        execution.timeout_ms = execution.timeout_ms or agent_timeout_ms(execution.agent_name)
        execution.task_id = f"task-{execution.step_id}-{secrets.token_hex(4)}"  # same try: same correlation id
        grace = timedelta(seconds=settings.EXECUTOR_STEP_GRACE_SECONDS)
        execution.due_at = now + timedelta(milliseconds=execution.timeout_ms) + grace
        execution.input_request = {
            **(execution.input_request or {}),
            "responded_at": iso_datetime(now),
            "responded_by": username or None,
            "reply": {"text": text, "data": data},  # kept, so the reply task can be sent again (resend)
        }
        execution.save(update_fields=["status", "task_id", "due_at", "input_request", "started_at", "timeout_ms"])
        run.lease_expires_at = max(lease_until(), execution.due_at)
        run.save(update_fields=["lease_expires_at", "updated_at"])
        waiting_refresh(run)
        task = reply_task(run, execution)
        outbox_enqueue(topic=settings.KAFKA_TASKS_TOPIC, key=str(run.id), payload=task)
        run_log(
            run,
            f"Step '{execution.step_id}' answered"
            + (f" by {username}" if username else "")
            + "; the reply goes to the agent",
            source=LogSource.API,
            step_id=execution.step_id,
            data={"task_id": execution.task_id, "step_execution_id": str(execution.id)},
        )
        monitoring_publish(
            run, status=StepStatus.RUNNING, step_id=execution.step_id, metadata={"task_id": execution.task_id}
        )
        # An answer to auth-required may be a credential: the audit trail notes the answer, without it.
        signing_in = execution.input_request.get("state") == "auth-required"
        audit_record(
            user=user,
            action="run.respond",
            resource_type="run",
            resource_id=run.pk,
            changes={
                "step_execution_id": [None, str(execution.id)],
                "status": [StepStatus.INPUT_REQUIRED, StepStatus.RUNNING],
            },
            input_data=None if signing_in else {"text": text, "data": data},
        )
    return execution


def agent_timeout_ms(name: str) -> int:
    found = Agent.objects.live().filter(name=name).values_list("timeout_ms", flat=True).first()
    return found or DEFAULT_TIMEOUT_MS


def answered(execution: StepExecution) -> bool:
    """A RUNNING step whose agent got a person's answer: its task to send (again) is the reply task."""
    return execution.status == StepStatus.RUNNING and bool((execution.input_request or {}).get("reply"))


def reply_task(run: Run, execution: StepExecution) -> dict:
    """The agent task carrying the answer: the try's correlation id, the new task id, the agent's task."""
    retry = (run.plan.get("steps") or {}).get(execution.step_id, {}).get("retry")
    task = messages.agent_task(run, execution, retry=retry)
    # The reply's own deadline (the try's original one has passed while the person thought).
    grace = timedelta(seconds=settings.EXECUTOR_STEP_GRACE_SECONDS)
    task["deadline"] = iso_datetime(execution.due_at - grace)
    task["agent_task_id"] = execution.agent_task_id
    task["agent_context_id"] = execution.agent_context_id
    task["reply"] = execution.input_request["reply"]
    return task
