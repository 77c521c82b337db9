"""Writes to the agent registry. Every function takes the acting user for the change trail."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.choices import AgentStatus
from agents.models import Agent
from core.api.exceptions import Conflict


def _ensure_name_free(name: str, *, exclude_id=None) -> None:
    clash = Agent.objects.filter(name=name).exclude(status=AgentStatus.DELETED)
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
    except IntegrityError:  # a concurrent create took the name between the check and the insert
        raise Conflict(f"An agent named {data['name']!r} already exists.") from None
    return agent


def agent_update(*, agent: Agent, user, data: dict) -> Agent:
    if "name" in data and data["name"] != agent.name:
        _ensure_name_free(data["name"], exclude_id=agent.pk)
    for field, value in data.items():
        setattr(agent, field, value)
    agent.updated_by = user.get_username()
    try:
        with transaction.atomic():
            agent.save()
    except IntegrityError:
        raise Conflict(f"An agent named {data['name']!r} already exists.") from None
    return agent


def agent_delete(*, agent: Agent, user) -> None:
    """Soft delete: the row stays for history and old runs; the name becomes free again."""
    agent.status = AgentStatus.DELETED
    agent.deleted_at = timezone.now()
    agent.updated_by = user.get_username()
    agent.save(update_fields=["status", "deleted_at", "updated_by", "updated_at"])
