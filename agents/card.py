"""Fetching an agent's A2A agent card, with the agent's own auth and timeout."""

import json
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.utils import timezone

from agents.choices import AuthType
from agents.models import Agent

CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")  # A2A 0.3+, then older
# A card is a few KiB; reading more than this would only let an agent fill our memory.
CARD_MAX_BYTES = 1_048_576


def auth_headers(agent: Agent) -> dict[str, str]:
    config = agent.auth_config or {}
    if agent.auth_type == AuthType.BEARER:
        return {"Authorization": f"Bearer {config['token']}"}
    if agent.auth_type == AuthType.APIKEY:
        return {config.get("header_name") or "X-API-Key": config["key"]}
    return {}


def card_urls(url: str) -> list[str]:
    """Where to look: under the agent's URL first, then at its origin when it has a path."""
    parts = urlsplit(url)
    bases = [url.rstrip("/")]
    origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    if origin != bases[0]:
        bases.append(origin)
    return [base + path for base in bases for path in CARD_PATHS]


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
    timeout = agent.timeout_ms / 1000
    started = time.perf_counter()
    # follow_redirects stays off: a card URL that redirects elsewhere is reported, not followed.
    with httpx.Client(timeout=timeout, headers=headers) as client:
        for url in card_urls(agent.url):
            result["card_url"] = url
            try:
                with client.stream("GET", url) as response:
                    body = _read_card(response)
            except httpx.TimeoutException:
                result["error"] = f"Timed out after {agent.timeout_ms} ms fetching {url}"
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
            result.update(status="healthy", card=card, error=None)
            break
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _read_card(response: httpx.Response) -> bytes | None:
    """The body of a 2xx answer, or None when it passes CARD_MAX_BYTES (read no further); b"" otherwise."""
    if response.status_code >= 300:
        return b""  # only the status is looked at
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > CARD_MAX_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
