"""Writes to the agent registry. Each write records an audit event in the same transaction."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.choices import MASK, SECRET_AUTH_KEYS, AgentStatus
from agents.models import Agent
from audit.services import audit_record, diff
from core.errors import Conflict

AUDITED_FIELDS = (
    "name",
    "url",
    "description",
    "auth_type",
    "auth_config",
    "timeout_ms",
    "retry_config",
    "max_concurrency",
    "status",
)


def _snapshot(agent: Agent) -> dict:
    values = {field: getattr(agent, field) for field in AUDITED_FIELDS}
    # Secrets never reach the audit trail; a changed secret still shows as a change.
    values["auth_config"] = {
        key: (f"{MASK}{hash(value) & 0xFFFF:04x}" if key in SECRET_AUTH_KEYS else value)
        for key, value in (agent.auth_config or {}).items()
    }
    return values


def _masked(changes: dict) -> dict:
    if "auth_config" in changes:
        changes["auth_config"] = [
            {key: (MASK if key in SECRET_AUTH_KEYS else value) for key, value in (side or {}).items()}
            for side in changes["auth_config"]
        ]
    return changes


def _ensure_name_free(name: str, *, exclude_id=None) -> None:
    clash = Agent.objects.live().filter(name=name)
    if exclude_id is not None:
        clash = clash.exclude(pk=exclude_id)
    if clash.exists():
        raise Conflict(f"An agent named {name!r} already exists.")


def agent_create(*, user, data: dict) -> Agent:
    _ensure_name_free(data["name"])
    agent = Agent(**data, created_by=user.get_username(), updated_by=user.get_username())
    try:
        with transaction.atomic():
            agent.save()
            changes = _masked(diff({}, _snapshot(agent)))
            audit_record(user=user, action="agent.create", resource_type="agent", resource_id=agent.pk, changes=changes)
    except IntegrityError:  # a concurrent create took the name between the check and the insert
        raise Conflict(f"An agent named {data['name']!r} already exists.") from None
    return agent


def agent_update(*, agent: Agent, user, data: dict) -> Agent:
    if "name" in data and data["name"] != agent.name:
        _ensure_name_free(data["name"], exclude_id=agent.pk)
    before = _snapshot(agent)
    for field, value in data.items():
        setattr(agent, field, value)
    changes = _masked(diff(before, _snapshot(agent)))
    if not changes:
        return agent
    agent.updated_by = user.get_username()
    try:
        with transaction.atomic():
            agent.save()
            audit_record(user=user, action="agent.update", resource_type="agent", resource_id=agent.pk, changes=changes)
    except IntegrityError:
        raise Conflict(f"An agent named {data['name']!r} already exists.") from None
    return agent


def agent_delete(*, agent: Agent, user) -> None:
    """Soft delete: the row stays for history and old runs; the name becomes free again."""
    with transaction.atomic():
        previous = agent.status
        agent.status = AgentStatus.DELETED
        agent.deleted_at = timezone.now()
        agent.updated_by = user.get_username()
        agent.save(update_fields=["status", "deleted_at", "updated_by", "updated_at"])
        audit_record(
            user=user,
            action="agent.delete",
            resource_type="agent",
            resource_id=agent.pk,
            changes={"status": [previous, AgentStatus.DELETED]},
        )
