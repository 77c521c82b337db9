"""Writes to workflow definitions: create, update (a new version when the definition changes), delete."""

import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.choices import AgentStatus
from agents.models import Agent
from audit.services import audit_record, diff
from core.errors import Conflict, FieldError, InvalidInput
from core.versions import kept
from workflows.choices import DEFINITION_FIELDS, WorkflowStatus
from workflows.definition.plan import plan_from_definition
from workflows.definition.validation import validate_definition
from workflows.models import Workflow, WorkflowVersion


def agent_statuses(definition) -> dict[str, str]:
    """{agent name: status} for the agents a definition names; a live agent wins over deleted ones."""
    steps = definition.get("steps") if isinstance(definition, dict) else None
    names = {
        step["agent_name"]
        for step in (steps.values() if isinstance(steps, dict) else [])
        if isinstance(step, dict) and isinstance(step.get("agent_name"), str)
    }

    def read() -> dict[str, str]:
        statuses: dict[str, str] = {}
        for name, status in Agent.objects.filter(name__in=names).values_list("name", "status"):
            if statuses.get(name) in (None, AgentStatus.DELETED):
                statuses[name] = status
        return statuses

    # Kept per process while the agents table is unchanged (core/versions.py): every execute asks.
    return dict(kept("agents_agent", ("statuses", frozenset(names)), read))


def definition_check(definition) -> dict:
    """Validates a definition against every rule and the agent registry; returns the normalised plan.

    Raises InvalidInput listing every problem with its field path.
    """
    issues = validate_definition(definition, agents=agent_statuses(definition))
    if issues:
        raise InvalidInput([FieldError(issue.field, issue.message, issue.type) for issue in issues])
    return plan_from_definition(definition)


def _ensure_name_free(name: str, *, exclude_id=None) -> None:
    clash = Workflow.objects.live().filter(name=name)
    if exclude_id is not None:
        clash = clash.exclude(pk=exclude_id)
    if clash.exists():
        raise Conflict(f"A workflow named {name!r} already exists.")


def definition_changes(before: dict, after: dict) -> dict:
    """{field: [old, new]} per top-level field, and per step as `steps.<id>`."""
    top = diff({k: v for k, v in before.items() if k != "steps"}, {k: v for k, v in after.items() if k != "steps"})
    steps = diff(before.get("steps") or {}, after.get("steps") or {})
    return {**top, **{f"steps.{step_id}": change for step_id, change in steps.items()}}


def workflow_create(
    *, user, definition: dict, status: str = WorkflowStatus.ACTIVE, workflow_id: uuid.UUID | None = None
) -> Workflow:
    plan = definition_check(definition)
    username = user.get_username() if user is not None else ""
    _ensure_name_free(plan["name"])
    try:
        with transaction.atomic():
            workflow = Workflow.objects.create(
                id=workflow_id or uuid.uuid4(),
                name=plan["name"],
                description=plan.get("description") or "",
                status=status,
                definition=plan,
                created_by=username,
                updated_by=username,
            )
            WorkflowVersion.objects.create(workflow=workflow, version=1, definition=plan, created_by=username)
            audit_record(
                user=user,
                action="workflow.create",
                resource_type="workflow",
                resource_id=workflow.pk,
                changes={**definition_changes({}, plan), "status": [None, status], "version": [None, 1]},
            )
    except IntegrityError:  # a concurrent create took the name between the check and the insert
        raise Conflict(f"A workflow named {plan['name']!r} already exists.") from None
    return workflow


def workflow_update(*, workflow: Workflow, user, definition: dict, status: str | None = None) -> Workflow:
    """Saves a new definition (a new version when it differs) and/or a new status.

    The row is locked for the whole update, so concurrent updates queue and each gets its own
    version number; the unique (workflow, version) constraint backs that up.
    """
    plan = definition_check(definition)
    username = user.get_username() if user is not None else ""
    if plan["name"] != workflow.name:
        _ensure_name_free(plan["name"], exclude_id=workflow.pk)
    try:
        with transaction.atomic():
            locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
            changes = definition_changes(locked.definition, plan)
            if changes:
                locked.version += 1
                locked.definition = plan
                locked.name = plan["name"]
                locked.description = plan.get("description") or ""
                WorkflowVersion.objects.create(
                    workflow=locked, version=locked.version, definition=plan, created_by=username
                )
                changes["version"] = [locked.version - 1, locked.version]
            if status is not None and status != locked.status:
                changes["status"] = [locked.status, status]
                locked.status = status
            if not changes:
                return locked
            locked.updated_by = username
            locked.save()
            audit_record(
                user=user, action="workflow.update", resource_type="workflow", resource_id=locked.pk, changes=changes
            )
    except IntegrityError:
        raise Conflict(f"A workflow named {plan['name']!r} already exists.") from None
    return locked


def workflow_delete(*, workflow: Workflow, user) -> None:
    with transaction.atomic():
        previous = workflow.status
        workflow.status = WorkflowStatus.DELETED
        workflow.deleted_at = timezone.now()
        workflow.updated_by = user.get_username() if user is not None else ""
        workflow.save(update_fields=["status", "deleted_at", "updated_by", "updated_at"])
        audit_record(
            user=user,
            action="workflow.delete",
            resource_type="workflow",
            resource_id=workflow.pk,
            changes={"status": [previous, WorkflowStatus.DELETED]},
        )


# Older files carry these; the server owns ids and versions, so they are accepted and ignored.
IGNORED_FILE_FIELDS = ("workflow_id", "version")


def workflow_import(*, user, document) -> tuple[Workflow, str]:
    """Creates a workflow from a file of the older format, or saves it as a new version of the live
    workflow of that name when the definition differs. Returns the workflow and what happened:
    "created", "updated" or "unchanged"."""
    if not isinstance(document, dict):
        raise InvalidInput.one("", "Expected a JSON object.")
    unknown = sorted(set(document) - set(DEFINITION_FIELDS) - set(IGNORED_FILE_FIELDS))
    if unknown:
        raise InvalidInput([FieldError(name, "Unknown field.", "unknown_field") for name in unknown])
    definition = {key: document[key] for key in DEFINITION_FIELDS if key in document}
    name = definition.get("name")
    existing = Workflow.objects.live().filter(name=name).first() if isinstance(name, str) else None
    if existing is None:
        return workflow_create(user=user, definition=definition), "created"
    before = existing.version
    workflow = workflow_update(workflow=existing, user=user, definition=definition)
    return workflow, "unchanged" if workflow.version == before else "updated"


def definition_fields(workflow: Workflow) -> dict:
    """The editable parts of the current definition, as a client would send them."""
    return {key: workflow.definition.get(key) for key in DEFINITION_FIELDS if key in workflow.definition}
