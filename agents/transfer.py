"""Agents to and from files: the older system's agents YAML (`scripts/agents.yaml.example`, read by its
`register_agents.py`) and our own export, which is the same shape (`agents:` list) with our fields.

Each entry is checked by the API's own AgentSerializer (what POST /agents, or PATCH for an agent that
is updated, would answer), with its field paths prefixed by the entry's index (`agents[2].timeout_ms`):
the serializer is the one home of the agent field rules, and this module keeps the commands free of DRF.
A file is imported whole or not at all: all entries are written in one transaction, and any invalid
entry (or a failure while writing) rolls every one of them back.

Secrets never leave in clear: an export writes each token and key as `********`. Importing that keeps
the stored secret of an existing agent (with --update, at the same URL origin, as the API does); a new
agent needs the real secret in its place.
"""

from dataclasses import dataclass, field

import yaml
from django.db import transaction

from agents.api.serializers import AgentSerializer
from agents.choices import MASK, SECRET_AUTH_KEYS, AuthType
from agents.models import Agent
from agents.services import agent_create, agent_update
from core.api.exceptions import BODY_FIELD, flatten_errors
from core.errors import DomainError, FieldError, InvalidInput

AUTH_ALIASES = {"api_key": "key"}  # the older example file's name for the API key
SECRETS_NOTE = (
    "Secrets are not exported: each auth_config token and key reads ********. Importing with --update keeps "
    "the stored secret of an agent that exists at the same URL origin; for a new agent (or another "
    "instance), replace ******** with the secret before running import_agents."
)


class FileError(Exception):
    """The file cannot be read as an agents file at all."""


def agents_file_read(text: str) -> list:
    """The entries of an agents file: `{agents: [...]}` (older or ours; other keys ignored) or a bare list.
    YAML is read safely (no tags); JSON is YAML too."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FileError(f"not valid YAML or JSON: {exc}") from None
    if isinstance(document, dict):
        document = document.get("agents")
    if not isinstance(document, list):
        raise FileError("expected a list of agents, or a mapping with an 'agents' list")
    return document


def _from_older(entry: dict) -> dict:
    """What the older files write differently: auth_type in any case, `api_key`, a null description."""
    entry = dict(entry)
    if isinstance(entry.get("auth_type"), str) and entry["auth_type"].lower() in AuthType.values:
        entry["auth_type"] = entry["auth_type"].lower()
    config = entry.get("auth_config")
    if entry.get("auth_type") == AuthType.APIKEY and isinstance(config, dict):
        entry["auth_config"] = {AUTH_ALIASES.get(key, key): value for key, value in config.items()}
    if "description" in entry and entry["description"] is None:
        entry["description"] = ""
    return entry


def agent_entry_clean(entry, existing: Agent | None = None) -> dict:
    """The fields of one entry as the services take them; raises InvalidInput with every problem.
    `existing` is the agent the entry updates: fields left out keep their values, as with PATCH."""
    if not isinstance(entry, dict):
        raise InvalidInput.one("", "Expected a mapping (an agent's fields).")
    entry = _from_older(entry)
    serializer = AgentSerializer(instance=existing, data=entry, partial=existing is not None)
    if serializer.is_valid():
        return dict(serializer.validated_data)
    errors = []
    for error in flatten_errors(serializer.errors):
        path, message = ("" if error["field"] == BODY_FIELD else error["field"]), error["message"]
        key = path.removeprefix("auth_config.")
        if key in SECRET_AUTH_KEYS and (entry.get("auth_config") or {}).get(key) == MASK:
            message = f"Exported secrets read {MASK}: put the real {key} here."
        errors.append(FieldError(path, message, error["type"]))
    raise InvalidInput(errors)


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # existing names, without --update
    invalid: list[tuple[int, str, list[FieldError]]] = field(default_factory=list)  # (index, name, errors)


def _prefixed(index: int, exc: DomainError) -> list[FieldError]:
    errors = exc.errors if isinstance(exc, InvalidInput) else [FieldError("", exc.message, "conflict")]
    return [FieldError(f"agents[{index}]" + (f".{e.field}" if e.field else ""), e.message, e.code) for e in errors]


def agents_import(*, entries: list, user, update: bool = False, dry_run: bool = False) -> ImportReport:
    """Creates the agents of `entries` (and with `update` changes the existing ones; else reports them as
    skipped), all in one transaction: when any entry is invalid nothing is written. `dry_run` does the
    whole import, then rolls it back, so it reports exactly what a real run would."""
    report = ImportReport()
    names = [_name(entry) for entry in entries]
    existing = {agent.name: agent for agent in Agent.objects.live().filter(name__in=names)}
    seen: dict[str, int] = {}
    with transaction.atomic():
        for index, entry in enumerate(entries):
            name = _name(entry)
            try:
                if name and name in seen:
                    raise InvalidInput.one("name", f"Also at index {seen[name]}: each name once per file.", "duplicate")
                seen.setdefault(name, index)
                agent = existing.get(name)
                if agent is not None and not update:
                    agent_entry_clean(entry, agent)  # still checked: a bad entry is reported either way
                    report.skipped.append(name)
                    continue
                data = agent_entry_clean(entry, agent)
                if agent is None:
                    agent_create(user=user, data=data)
                    report.created.append(name)
                else:
                    before = agent.updated_at
                    agent = agent_update(agent=agent, user=user, data=data)
                    (report.updated if agent.updated_at != before else report.unchanged).append(name)
            except DomainError as exc:
                report.invalid.append((index, name, _prefixed(index, exc)))
        if report.invalid or dry_run:
            transaction.set_rollback(True)
    return report


def _name(entry) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return name.strip() if isinstance(name, str) else ""


def agent_export(agent: Agent) -> dict:
    """One agent as an entry of an agents file: the fields the API takes, secrets masked."""
    entry = {name: getattr(agent, name) for name, item in AgentSerializer().fields.items() if not item.read_only}
    entry["auth_config"] = {
        key: (MASK if key in SECRET_AUTH_KEYS else value) for key, value in entry["auth_config"].items()
    }
    return entry
