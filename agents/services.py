"""Writes to the agent registry. Each write records an audit event in the same transaction."""

import httpx
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.choices import MASK, SECRET_AUTH_KEYS, AgentStatus, AuthType
from agents.models import Agent
from audit.services import audit_record, diff
from core.errors import Conflict, FieldError, InvalidInput

AUDITED_FIELDS = (
    "name",
    "url",
    "description",
    "auth_type",
    "auth_config",
    "timeout_ms",
    "retry_config",
    "max_concurrency",
    "circuit_breaker_config",
    "status",
)
DEFAULT_PORTS = {"http": 80, "https": 443}
# The secret each auth type cannot do without.
REQUIRED_SECRET = {AuthType.BEARER: "token", AuthType.APIKEY: "key"}


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


def url_origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) as the network sees them: case, default ports, IDNA and a trailing dot ignored."""
    parsed = httpx.URL(url)
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    return parsed.scheme.lower(), host, parsed.port or DEFAULT_PORTS.get(parsed.scheme.lower())


def _auth_config_resolved(agent: Agent | None, data: dict) -> tuple[dict, list[str]]:
    """The auth_config to store, and the stored secrets dropped because the URL moved to another origin.

    In `data`, a secret sent as the mask (or an auth_config not sent at all) means "keep the stored one".
    But a secret was given for one origin: it is never kept for another, or an editor could point the
    agent at a server of theirs and have it sent there. Raises InvalidInput naming the secret to send again."""
    auth_type = data.get("auth_type", agent.auth_type if agent else AuthType.NONE)
    stored = (agent.auth_config or {}) if agent is not None and agent.auth_type == auth_type else {}
    if "auth_config" in data:
        config = dict(data["auth_config"])
    else:
        config = {key: (MASK if key in SECRET_AUTH_KEYS else value) for key, value in stored.items()}
    moved = agent is not None and "url" in data and url_origin(data["url"]) != url_origin(agent.url)
    for key in SECRET_AUTH_KEYS & set(config):
        if config[key] == MASK:
            if stored.get(key) and not moved:
                config[key] = stored[key]
            else:
                del config[key]
    required = REQUIRED_SECRET.get(auth_type)
    if required and not config.get(required):
        if moved and stored.get(required):
            message = "The URL's origin changed: send the secret again (a stored one never goes to another origin)."
        else:
            message = f"Required when auth_type is {auth_type!r}."
        raise InvalidInput([FieldError(f"auth_config.{required}", message, "required")])
    # Replaced by a new secret or gone with the auth type: either way the stored one was not kept.
    dropped = sorted(SECRET_AUTH_KEYS & set(agent.auth_config or {})) if moved else []
    return config, dropped


def agent_create(*, user, data: dict) -> Agent:
    _ensure_name_free(data["name"])
    if "auth_config" in data or "auth_type" in data:
        data = {**data, "auth_config": _auth_config_resolved(None, data)[0]}
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
    data = dict(data)
    data["auth_config"], dropped = _auth_config_resolved(agent, data)
    before = _snapshot(agent)
    for field, value in data.items():
        setattr(agent, field, value)
    changes = _masked(diff(before, _snapshot(agent)))
    if dropped:  # which stored secrets were dropped, never their values
        changes["secret_dropped"] = [None, dropped]
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
