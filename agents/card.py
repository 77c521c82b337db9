"""Fetching an agent's A2A agent card, with the agent's own auth and timeout."""

import json
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.utils import timezone

from agents.choices import AuthType
from agents.models import Agent

CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")  # A2A 0.3+, then older
# A card is a few KiB; reading more than this would only let an agent fill our memory.
CARD_MAX_BYTES = 1_048_576
# The AgentCard's fields (A2A 0.3 and 1.0): all the health check reports of what it fetched.
CARD_FIELDS = {
    "protocolVersion",
    "name",
    "description",
    "url",
    "preferredTransport",
    "additionalInterfaces",
    "supportedInterfaces",
    "iconUrl",
    "provider",
    "version",
    "documentationUrl",
    "capabilities",
    "securitySchemes",
    "security",
    "securityRequirements",
    "defaultInputModes",
    "defaultOutputModes",
    "skills",
    "supportsAuthenticatedExtendedCard",
    "signatures",
}


def auth_headers(agent: Agent) -> dict[str, str]:
    config = agent.auth_config or {}
    if agent.auth_type == AuthType.BEARER:
        return {"Authorization": f"Bearer {config['token']}"}
    if agent.auth_type == AuthType.APIKEY:
        return {config.get("header_name") or "X-API-Key": config["key"]}
    return {}


def card_urls(url: str) -> list[str]:
    """Where to look: under the agent URL's path first, then at its origin when it has a path.

    The card path is appended to the URL's path, and its query and fragment are dropped: otherwise a URL
    ending in `?` or `#` would turn the card path into a query or fragment and fetch the URL's own path,
    and viewers could read any path of an internal service through the health check."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    prefixes = [path, ""] if path else [""]
    return [
        urlunsplit((parts.scheme, parts.netloc, prefix + card, "", "")) for prefix in prefixes for card in CARD_PATHS
    ]


def card_fields(card: dict) -> dict:
    """What the health check reports: the AgentCard's own fields, nothing else the server sent."""
    return {key: value for key, value in card.items() if key in CARD_FIELDS}


class _Deadline(Exception):
    """The check's time is up while a card is still arriving."""


def agent_check_health(*, agent: Agent) -> dict:
    result = {
        "agent_id": agent.id,
        "status": "unhealthy",
        "checked_at": timezone.now(),
        "latency_ms": None,
        "card_url": None,
        "http_status": None,
        "card": None,
        "error": None,
    }
    headers = {"Accept": "application/json", **auth_headers(agent)}
    # Viewers can ask for it: bounded by a setting for the whole check, or they could hold web workers
    # for the agent's timeout (up to 5 minutes) per card path. httpx's timeouts are per operation, so a
    # read already waiting when the deadline passes may take its own timeout more: at worst twice the bound.
    timeout_ms = min(agent.timeout_ms, settings.AGENT_HEALTH_TIMEOUT_SECONDS * 1000)
    started = time.perf_counter()
    deadline = time.monotonic() + timeout_ms / 1000
    # follow_redirects stays off: a card URL that redirects elsewhere is reported, not followed.
    with httpx.Client(headers=headers) as client:
        for url in card_urls(agent.url):
            result["card_url"] = url
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise _Deadline
                with client.stream("GET", url, timeout=left) as response:
                    body = _read_card(response, deadline)
            except (httpx.TimeoutException, _Deadline):
                result["error"] = f"Timed out after {timeout_ms} ms fetching {url}"
                break
            except httpx.HTTPError as exc:
                result["error"] = f"Could not reach {url}: {type(exc).__name__}: {exc}"
                break
            result["http_status"] = response.status_code
            if response.status_code == 404:
                result["error"] = "No agent card found at " + ", ".join(card_urls(agent.url))
                continue
            if response.status_code >= 400:
                result["error"] = f"{url} answered HTTP {response.status_code}"
                break
            if body is None:
                result["error"] = f"{url} answered more than {CARD_MAX_BYTES} bytes, which is no agent card"
                break
            try:
                card = json.loads(body)
            except ValueError:
                result["error"] = f"{url} did not return JSON"
                break
            if not isinstance(card, dict):
                result["error"] = f"{url} did not return a JSON object"
                break
            if not isinstance(card.get("name"), str):
                result["error"] = f"{url} returned JSON that is not an agent card (it has no name)"
                break
            result.update(status="healthy", card=card_fields(card), error=None)
            break
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _read_card(response: httpx.Response, deadline: float) -> bytes | None:
    """The body of a 2xx answer, or None when it passes CARD_MAX_BYTES (read no further); b"" otherwise.

    Raises _Deadline when the deadline passes first: a server sending a byte at a time never trips the
    read timeout, which is per chunk."""
    if response.status_code >= 300:
        return b""  # only the status is looked at
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        if time.monotonic() > deadline:
            raise _Deadline
        size += len(chunk)
        if size > CARD_MAX_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
