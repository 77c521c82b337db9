"""Writes to schedules. Each write records an audit event in its transaction."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record, diff
from core.errors import Conflict, FieldError, InvalidInput
from core.formats import iso_datetime
from runs.services import run_input_check
from schedules.cron import cron_problem, next_after, timezone_problem
from schedules.models import Schedule
from workflows.choices import WorkflowStatus
from workflows.models import Workflow

AUDITED_FIELDS = ("name", "workflow_id", "cron", "timezone", "input_data", "active")


def _snapshot(schedule: Schedule) -> dict:
    values = {field: getattr(schedule, field) for field in AUDITED_FIELDS}
    values["workflow_id"] = str(schedule.workflow_id) if schedule.workflow_id else None
    return values


def workflow_problem(workflow: Workflow | None) -> str | None:
    """Why the schedule cannot run this workflow now (then it is paused), or None."""
    if workflow is None or workflow.deleted_at is not None:
        return "The workflow was deleted."
    if workflow.status == WorkflowStatus.INACTIVE:
        return f"The workflow {workflow.name!r} is inactive."
    return None


def _checked(schedule: Schedule) -> None:
    """All problems of the schedule as it would be saved, at once, with field paths."""
    errors: list[FieldError] = []
    cron_ok = not (problem := cron_problem(schedule.cron))
    if not cron_ok:
        errors.append(FieldError("cron", problem))
    zone_ok = not (problem := timezone_problem(schedule.timezone))
    if not zone_ok:
        errors.append(FieldError("timezone", problem))
    if not isinstance(schedule.input_data, dict):
        errors.append(FieldError("input_data", "Give a JSON object."))
    else:
        try:
            run_input_check(schedule.workflow, schedule.input_data)
        except InvalidInput as error:
            errors += error.errors
    if errors:
        raise InvalidInput(errors)


def _workflow(workflow_id) -> Workflow:
    workflow = Workflow.objects.live().filter(pk=workflow_id).first()
    if workflow is None:
        raise InvalidInput([FieldError("workflow_id", f"No workflow with id {str(workflow_id)!r}.", "does_not_exist")])
    return workflow


def next_run_plan(schedule: Schedule, now=None) -> None:
    """next_run_at: the first due time after now, or None while inactive."""
    schedule.next_run_at = None
    if not schedule.active:
        return
    schedule.next_run_at = next_after(schedule.cron, schedule.timezone, now or timezone.now())


def _audit(user, action: str, schedule: Schedule, changes: dict) -> None:
    audit_record(user=user, action=action, resource_type="schedule", resource_id=schedule.pk, changes=changes)


def _saved(schedule: Schedule) -> None:
    try:
        with transaction.atomic():
            schedule.save()
    except IntegrityError:  # a concurrent write took the name between the check and the insert
        raise Conflict(f"A schedule named {schedule.name!r} already exists.") from None


def _name_free(name: str, pk=None) -> None:
    if Schedule.objects.live().filter(name=name).exclude(pk=pk).exists():
        raise Conflict(f"A schedule named {name!r} already exists.")


def schedule_create(*, user, data: dict) -> Schedule:
    data = dict(data)
    workflow = _workflow(data.pop("workflow_id"))
    username = user.get_username() if user is not None and user.is_authenticated else ""
    schedule = Schedule(workflow=workflow, **data, created_by=username, updated_by=username)
    _checked(schedule)
    _name_free(schedule.name)
    if schedule.active and (problem := workflow_problem(workflow)):
        raise Conflict(f"{problem} Activate the workflow first, or create the schedule inactive.")
    next_run_plan(schedule)
    with transaction.atomic():
        _saved(schedule)
        _audit(user, "schedule.create", schedule, diff({}, _snapshot(schedule)))
    return schedule


def schedule_update(*, schedule: Schedule, user, data: dict) -> Schedule:
    data = dict(data)
    before = _snapshot(schedule)
    if "workflow_id" in data:
        schedule.workflow = _workflow(data.pop("workflow_id"))
    for field, value in data.items():
        setattr(schedule, field, value)
    _checked(schedule)
    changes = diff(before, _snapshot(schedule))
    if not changes:
        return schedule
    if "name" in changes:
        _name_free(schedule.name, schedule.pk)
    if schedule.active and (problem := workflow_problem(schedule.workflow)):
        raise Conflict(f"{problem} Activate the workflow first, or leave the schedule inactive.")
    if schedule.active:
        schedule.last_error = ""  # activating (or editing) an active schedule clears the reason it was paused
    if {"cron", "timezone", "active"} & set(changes):
        next_run_plan(schedule)
    schedule.updated_by = user.get_username() if user is not None and user.is_authenticated else ""
    with transaction.atomic():
        _saved(schedule)
        _audit(user, "schedule.update", schedule, changes)
    return schedule


def schedule_delete(*, schedule: Schedule, user) -> None:
    """Soft delete: the schedule and its fires stay for the record; nothing more is started."""
    with transaction.atomic():
        schedule.deleted_at = timezone.now()
        schedule.next_run_at = None
        schedule.updated_by = user.get_username() if user is not None and user.is_authenticated else ""
        schedule.save(update_fields=["deleted_at", "next_run_at", "updated_by", "updated_at"])
        _audit(user, "schedule.delete", schedule, {"deleted_at": [None, iso_datetime(schedule.deleted_at)]})


def schedule_pause(schedule: Schedule, reason: str) -> None:
    """By the system, inside the caller's transaction: the schedule stops until someone activates it."""
    schedule.active = False
    schedule.next_run_at = None
    schedule.last_error = f"{reason} The schedule is paused: set it active again once it can run."
    schedule.save(update_fields=["active", "next_run_at", "last_error", "updated_at"])
    _audit(None, "schedule.pause", schedule, {"active": [True, False], "last_error": ["", schedule.last_error]})
