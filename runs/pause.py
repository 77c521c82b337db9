"""Pause and resume a run (`POST /runs/{id}/pause`, `POST /runs/{id}/resume`, the admin's buttons).

The API changes the run row in its own transaction; the executor reads the run under its lock with
every message (runs/work.py `locked_run`), so it sees PAUSED at the next result. While paused:

- results of the steps in flight are recorded, and the decisions they lead to are taken (a block's
  counters, a failed sibling's cancel), but an agent step that would be dispatched is saved PENDING
  instead (`step_hold`): nothing reaches the bridge, also no loop iteration, parallel child or retry;
- step deadlines keep running: a try that times out fails (and its retry waits, PENDING);
- the run itself neither completes nor fails: its last step's success or a failure is decided at
  resume, when the walk finds it;
- it has no lease, so the recovery task never re-requests it, and the deadline pass leaves its
  PENDING rows alone.

Resume sets RUNNING and sends the run's execution request again (the same message as a start or a
recovery; the executor treats it as "look at this run": due rows are dispatched, then the plan is
walked), so whatever would have been dispatched meanwhile goes out then. A run paused before it
started is started by that request.
"""

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from core.errors import Conflict
from runs.choices import PAUSABLE_RUN, LogSource, RunStatus, StepStatus
from runs.models import Run, StepExecution
from runs.services import execution_request_enqueue, run_log, run_transition, step_transition


def _audit(run: Run, user, action: str, previous: str) -> None:
    changes = {"status": [previous, run.status]}
    audit_record(user=user, action=action, resource_type="run", resource_id=run.pk, changes=changes)


def run_pause(*, run: Run, user) -> Run:
    """PENDING or RUNNING -> PAUSED: steps in flight finish and are recorded, nothing new is dispatched."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status not in PAUSABLE_RUN:
            raise Conflict(f"Only PENDING or RUNNING runs can be paused; this run is {run.status}.")
        previous = run.status
        by = user.get_username() if user is not None and user.is_authenticated else "the system"
        run_transition(run, RunStatus.PAUSED, source=LogSource.API, detail=f"by {by}")
        _audit(run, user, "run.pause", previous)
    return run


def run_resume(*, run: Run, user) -> Run:
    """PAUSED -> RUNNING, and the executor is asked to dispatch what is ready."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status != RunStatus.PAUSED:
            raise Conflict(f"Only PAUSED runs can be resumed; this run is {run.status}.")
        run_transition(run, RunStatus.RUNNING, source=LogSource.API)
        _audit(run, user, "run.resume", RunStatus.PAUSED)
        execution_request_enqueue(run)
    return run


def step_hold(decider, execution: StepExecution) -> None:
    """An agent step of a paused run that would be dispatched now: saved PENDING and due at once, so
    the resume's deadline pass sends it (a retry already PENDING simply waits)."""
    if not execution._state.adding:
        return
    step_transition(execution, StepStatus.PENDING, run=decider.run)
    execution.due_at = timezone.now()
    execution.save()
    decider.remember(execution)
    run_log(
        decider.run,
        f"Step '{execution.step_id}' is ready; it is dispatched when the run is resumed",
        source=LogSource.EXECUTOR,
        step_id=execution.step_id,
        data=decider.where(execution),
    )
