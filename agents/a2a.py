"""Calling an agent over A2A (JSON-RPC 2.0 over HTTP POST): one blocking message, one result.

We build the JSON-RPC requests by hand instead of using the a2a-sdk client because the bridge must speak
BOTH A2A 0.3 (`message/send`, lower-case states such as `completed`, parts tagged with `kind`) and A2A 1.0
(`SendMessage` with the `A2A-Version: 1.0` header, `TASK_STATE_COMPLETED`-style enums, untagged parts),
picking per agent, while an sdk client speaks one version. The agent card says which version an agent
speaks; with no card we assume 0.3, which is what the older bridge sent.

A call may also answer with a Task that is not finished (`submitted` / `working`: the bridge follows it, see
agents/a2a_tasks.py) or that waits for a person (`input-required` / `auth-required`): the `CallResult` then
has that `state` and the agent's task and context ids.

`call_agent` never raises for agent or network problems: it returns a `CallResult` whose `error` says
what went wrong (HTTP status, not JSON, not JSON-RPC, JSON-RPC error, failed task, timeout, unreachable,
too large).

Answers are streamed and read only up to a limit (AGENT_RESPONSE_MAX_BYTES, cards CARD_MAX_BYTES): an agent
that answers 50 MB, or without end, must not cost the bridge that much memory.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from agents.agent_http import AgentClient, Answer, ConnectTimeout, ReadTimeout, TransportError
from agents.card import CARD_MAX_BYTES, card_urls
from agents.policy import retry_delay
from core import tracing

PROTOCOL_03 = "0.3"
PROTOCOL_10 = "1.0"
CARD_CACHE_SECONDS = 300
CARD_FETCH_TIMEOUT = 5.0
# A connect timeout shorter than the budget lets a dropped SYN be retried instead of eating the whole call.
CONNECT_TIMEOUT = 5.0
SNIPPET_CHARS = 200
# Of an error answer (HTTP 3xx-5xx) only a snippet is kept, so only its start is read.
ERROR_BODY_BYTES = 65_536

OPEN_STATES = frozenset({"submitted", "working"})  # the agent is still at it: the bridge follows the task
INPUT_STATES = frozenset({"input-required", "auth-required"})  # the agent waits for a person

# url -> (protocol, monotonic expiry)
_protocol_cache: dict[str, tuple[str, float]] = {}
# url -> whether its card says `capabilities.streaming` (cached with the protocol)
_streaming_cache: dict[str, bool] = {}


@dataclass(frozen=True)
class AgentCall:
    url: str
    headers: dict[str, str]  # auth headers already built (see agents.card.auth_headers)
    timeout_ms: int  # bounds the whole call: card discovery, every attempt and the waits between them
    max_retries: int = 0
    initial_delay_ms: int = 1000
    max_delay_ms: int = 30000
    backoff_multiplier: float = 2.0
    protocol: str | None = None  # "0.3" | "1.0" | None = discover from the agent card
    max_response_bytes: int | None = None  # None = settings.AGENT_RESPONSE_MAX_BYTES


@dataclass
class CallResult:
    ok: bool
    output: dict | None
    error: str | None
    duration_ms: int
    attempts: int  # HTTP attempts made
    state: str | None = None  # the agent's task state when it answered with a task ("completed", "working", ...)
    agent_task_id: str | None = None
    agent_context_id: str | None = None
    protocol: str | None = None  # the protocol the call was made with

    @property
    def open(self) -> bool:
        """The agent's task is not finished: it must be followed (agents/a2a_tasks.py)."""
        return self.error is None and self.state in OPEN_STATES

    @property
    def needs_input(self) -> bool:
        return self.error is None and self.state in INPUT_STATES


@dataclass
class _Outcome:
    output: dict | None = None
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None  # seconds, from a Retry-After header
    state: str | None = None
    agent_task_id: str | None = None
    agent_context_id: str | None = None


@dataclass(frozen=True)
class Message:
    """What a call sends besides the step's input: its messageId (derived from the try, so the same try
    sent again carries the same id) and, for the reply of a person, the agent's task and context."""

    message_id: str | None = None
    reply: dict | None = None  # {"text": str | None, "data": dict | None}
    agent_task_id: str | None = None
    agent_context_id: str | None = None


def clear_protocol_cache() -> None:
    _protocol_cache.clear()
    _streaming_cache.clear()


def card_streams(url: str) -> bool:
    """Whether the agent's card (read by an earlier call) says it streams."""
    return _streaming_cache.get(url, False)


async def call_agent(
    client: AgentClient,
    call: AgentCall,
    input_data: dict,
    *,
    correlation_id: str,
    task_id: str,
    message: Message | None = None,
) -> CallResult:
    started = time.monotonic()
    budget = call.timeout_ms / 1000
    attempts = 0
    outcome = _Outcome()
    protocol = None
    message = message or Message()

    def result(error: str | None) -> CallResult:
        duration_ms = int((time.monotonic() - started) * 1000)
        ok = error is None
        return CallResult(
            ok=ok,
            output=outcome.output if ok else None,
            error=error,
            duration_ms=duration_ms,
            attempts=attempts,
            state=outcome.state,
            agent_task_id=outcome.agent_task_id,
            agent_context_id=outcome.agent_context_id,
            protocol=protocol,
        )

    def remaining() -> float:
        return budget - (time.monotonic() - started)

    base_headers = {**call.headers, "X-Correlation-ID": correlation_id}
    try:
        async with asyncio.timeout(budget):
            if call.protocol:
                protocol = normalise_protocol(call.protocol)
            else:
                protocol = await discover_protocol(client, call.url, base_headers, remaining)
            while True:
                attempts += 1
                outcome = await _attempt(client, call, protocol, input_data, base_headers, task_id, message, remaining)
                if outcome.error is None:
                    return result(None)
                if not outcome.retryable or attempts > call.max_retries:
                    return result(_with_attempts(outcome.error, attempts))
                delay = _backoff_seconds(call, attempts, outcome.retry_after)
                if delay >= remaining():
                    return result(
                        _with_attempts(outcome.error, attempts)
                        + f"; no time left to retry within the {call.timeout_ms} ms timeout"
                    )
                await asyncio.sleep(delay)
    except TimeoutError:
        error = f"Agent timed out after {call.timeout_ms} ms"
        if attempts > 1 and outcome.error:
            error += f" ({attempts} attempts; earlier: {outcome.error})"
        return result(error)


def _with_attempts(error: str, attempts: int) -> str:
    return error if attempts == 1 else f"{error} (after {attempts} attempts)"


def _backoff_seconds(call: AgentCall, attempts: int, retry_after: float | None) -> float:
    cap = call.max_delay_ms / 1000
    policy = {
        "initial_delay_ms": call.initial_delay_ms,
        "backoff_multiplier": call.backoff_multiplier,
        "max_delay_ms": call.max_delay_ms,
    }
    delay = retry_delay(policy, attempts).total_seconds()
    if retry_after is not None:
        # The agent's own hint wins when it asks for longer, but never beyond our cap.
        delay = min(max(delay, retry_after), cap)
    return delay


# --- protocol discovery -------------------------------------------------------------------------------


async def discover_protocol(client: AgentClient, url: str, headers: dict[str, str], remaining=None) -> str:
    """ "1.0" or "0.3" from the agent card, cached per URL; "0.3" when there is no card."""
    cached = _protocol_cache.get(url)
    if cached and cached[1] > time.monotonic():
        return cached[0]
    protocol, definite = await _fetch_protocol(client, url, headers, remaining)
    if definite:
        _protocol_cache[url] = (protocol, time.monotonic() + CARD_CACHE_SECONDS)
    return protocol


async def _fetch_protocol(client, url, headers, remaining) -> tuple[str, bool]:
    """(protocol, definite): a network error or server error is not cached, so the next call asks again."""
    for card_url in card_urls(url):
        timeout = CARD_FETCH_TIMEOUT if remaining is None else max(min(remaining(), CARD_FETCH_TIMEOUT), 0.001)
        request_headers = {"Accept": "application/json", **headers}
        try:
            async with (
                asyncio.timeout(timeout),
                client.get(
                    card_url, request_headers, connect_timeout=min(timeout, CONNECT_TIMEOUT), read_timeout=timeout
                ) as answer,
            ):
                if answer.status >= 500:
                    return PROTOCOL_03, False
                if answer.status != 200:
                    continue
                body = await answer.body(CARD_MAX_BYTES)
        except (TransportError, TimeoutError):
            return PROTOCOL_03, False
        if body is None:  # larger than any real card: ignored like a missing one
            continue
        try:
            card = json.loads(body)
        except ValueError:
            continue
        if isinstance(card, dict):
            capabilities = card.get("capabilities") if isinstance(card.get("capabilities"), dict) else {}
            _streaming_cache[url] = capabilities.get("streaming") is True
            return protocol_from_card(card), True
    return PROTOCOL_03, True


def protocol_from_card(card: dict) -> str:
    """1.0 when `supportedInterfaces` offers JSON-RPC at protocol 1.x; otherwise (a 0.3 card, with its top-level
    `protocolVersion` "0.3.x", or a card that says nothing) 0.3.

    A card may offer both (the a2a-sdk 1.x adds the 0.3 fields when a 0.3 interface is listed); 1.0 wins.
    Only JSON-RPC interfaces count, since that is the only binding we speak.
    """
    versions = []
    for interface in card.get("supportedInterfaces") or []:
        if isinstance(interface, dict) and str(interface.get("protocolBinding") or "JSONRPC").upper() == "JSONRPC":
            versions.append(str(interface.get("protocolVersion") or ""))
    return PROTOCOL_10 if any(normalise_protocol(v) == PROTOCOL_10 for v in versions) else PROTOCOL_03


def normalise_protocol(version: str) -> str:
    """ "1", "1.0" and "1.0.0" all mean 1.0; anything else (0.3.x, 0.2.x, unknown) gets the 0.3 wire format."""
    return PROTOCOL_10 if str(version).strip().split(".")[0] == "1" else PROTOCOL_03


# --- one attempt ---------------------------------------------------------------------------------------


def message_id_of(run_id, correlation_id, task_id) -> str:
    """The messageId of a call: the same for the same try sent again (an agent that dedupes on it does
    not do the work twice), new for a retry (new correlation id) or a person's reply (new task id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"wfplatform:{run_id}/{correlation_id}/{task_id}"))


def _message_parts(protocol: str, text: str | None, data: dict | None) -> list[dict]:
    parts = []
    if text is not None:
        parts.append({"text": text} if protocol == PROTOCOL_10 else {"kind": "text", "text": text})
    if data is not None:
        parts.append(
            {"data": data, "mediaType": "application/json"}
            if protocol == PROTOCOL_10
            else {"kind": "data", "data": data}
        )
    return parts


def build_request(
    protocol: str, input_data: dict, *, correlation_id: str, task_id: str, message: Message | None = None
) -> dict:
    message_spec = message or Message()
    # Our task id goes in metadata: as the A2A `taskId` it would name a task the agent has never seen.
    metadata = {"correlation_id": correlation_id, "task_id": task_id}
    if message_spec.reply is not None:
        # A person's answer, in the agent's own task and context (which it asked in).
        reply = message_spec.reply
        parts = _message_parts(protocol, reply.get("text"), reply.get("data"))
    else:
        text = next(
            (input_data[k] for k in ("text", "query") if isinstance(input_data.get(k), str) and input_data[k]), None
        )
        if text is None:
            text = json.dumps(input_data, default=str)
        parts = _message_parts(protocol, text, input_data)
    if protocol == PROTOCOL_10:
        message = {
            "messageId": message_spec.message_id or str(uuid.uuid4()),
            "role": "ROLE_USER",
            "parts": parts,
            "metadata": metadata,
        }
        method, configuration = "SendMessage", {"returnImmediately": False, "historyLength": 0}
    else:
        message = {
            "kind": "message",
            "messageId": message_spec.message_id or str(uuid.uuid4()),
            "role": "user",
            "parts": parts,
            "metadata": metadata,
        }
        # No historyLength: in 0.3 a 0 means "all" on some servers and "none" on others.
        method, configuration = "message/send", {"blocking": True}
    if message_spec.agent_task_id:
        message["taskId"] = message_spec.agent_task_id
    if message_spec.agent_context_id:
        message["contextId"] = message_spec.agent_context_id
    params = {"message": message, "configuration": configuration}
    return {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": method, "params": params}


async def _attempt(client, call: AgentCall, protocol, input_data, headers, task_id, message, remaining) -> _Outcome:
    body = build_request(
        protocol, input_data, correlation_id=headers["X-Correlation-ID"], task_id=task_id, message=message
    )
    headers = {"Content-Type": "application/json", "Accept": "application/json", **headers}
    if protocol == PROTOCOL_10:
        headers["A2A-Version"] = PROTOCOL_10
    tracing.inject(headers)  # W3C traceparent of the bridge's agent-call span, when tracing is on
    left = max(remaining(), 0.001)
    # The read timeout is left loose on purpose: the call's own deadline (asyncio.timeout) is what ends a slow call.
    limit = call.max_response_bytes or settings.AGENT_RESPONSE_MAX_BYTES
    try:
        async with client.post(
            call.url, body, headers, connect_timeout=min(left, CONNECT_TIMEOUT), read_timeout=left + 1
        ) as answer:
            return await _read_answer(answer, limit)
    except ConnectTimeout:
        return _Outcome(error=f"Could not reach agent at {call.url}: ConnectTimeout", retryable=True)
    except ReadTimeout:
        return _Outcome(error=f"Agent timed out after {call.timeout_ms} ms", retryable=True)
    except TransportError as exc:
        return _Outcome(error=_unreachable(call.url, exc), retryable=exc.retryable)


async def _read_answer(answer: Answer, limit: int) -> _Outcome:
    """Reads the body up to `limit` bytes, then parses it."""
    if answer.status >= 300:
        # Only a snippet of an error answer is kept: read its start, and keep its status and retryability.
        body = await answer.body(ERROR_BODY_BYTES, truncate=True)
    elif answer.declared_length() > limit:
        return _too_large(limit)
    else:
        body = await answer.body(limit)
        if body is None:
            return _too_large(limit)
    return parse_response(answer.status, answer.headers, body)


def _too_large(limit: int) -> _Outcome:
    # Not retried: the agent would most likely answer the same again.
    return _Outcome(error=f"Agent's response is larger than the {limit}-byte limit (AGENT_RESPONSE_MAX_BYTES)")


def _unreachable(url: str, exc: Exception) -> str:
    detail = str(exc)
    return f"Could not reach agent at {url}: {type(exc).__name__}" + (f": {detail}" if detail else "")


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "..."


def parse_response(status: int, headers: Mapping[str, str], content: bytes) -> _Outcome:
    """An agent's answer (its body decoded, read whole or up to a limit) as an outcome."""
    if status >= 300:
        error = f"Agent returned HTTP {status}"
        text = content.decode("utf-8", errors="replace")
        if text.strip():
            error += f": {_snippet(text)}"
        retryable = status >= 500 or status == 429
        return _Outcome(error=error, retryable=retryable, retry_after=_retry_after(headers) if retryable else None)
    try:
        body = json.loads(content)
    except ValueError:
        content_type = headers.get("content-type", "no content type")
        return _Outcome(
            error=f"Agent returned a response that is not JSON (HTTP {status}, {content_type}): "
            f"{_snippet(content.decode('utf-8', errors='replace')) or '<empty body>'}"
        )
    if not isinstance(body, dict) or not ("result" in body or "error" in body):
        return _Outcome(error=f"Agent returned JSON that is not a JSON-RPC response: {_snippet(json.dumps(body))}")
    if body.get("error") is not None:
        error = body["error"]
        if isinstance(error, dict):
            return _Outcome(error=f"Agent returned JSON-RPC error {error.get('code')}: {error.get('message')}")
        return _Outcome(error=f"Agent returned JSON-RPC error: {_snippet(json.dumps(error))}")
    return parse_result(body.get("result"))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(float(headers["retry-after"]), 0.0)
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date, which we do not bother with


# --- the result ----------------------------------------------------------------------------------------


def parse_result(result: Any) -> _Outcome:
    """A task (0.3: `kind: task`; 1.0: wrapped as `{"task": ...}`) or a direct message reply."""
    if isinstance(result, dict) and isinstance(result.get("task"), dict):
        result = {**result["task"], "kind": "task"}
    elif isinstance(result, dict) and isinstance(result.get("message"), dict):
        result = {**result["message"], "kind": "message"}
    if not isinstance(result, dict):
        return _Outcome(
            error=f"Agent returned a result that is neither a task nor a message: {_snippet(json.dumps(result))}"
        )
    kind = result.get("kind") or ("task" if "status" in result else "message" if "parts" in result else None)
    if kind == "message":
        output = _content([result.get("parts")])
        output.update(task_id=result.get("taskId"), context_id=result.get("contextId"))
        return _Outcome(output=_whole_numbers_as_ints(output))
    if kind != "task":
        return _Outcome(
            error=f"Agent returned a result that is neither a task nor a message: {_snippet(json.dumps(result))}"
        )

    status = result.get("status") if isinstance(result.get("status"), dict) else {}
    state = task_state(status.get("state"))
    message = status.get("message") if isinstance(status.get("message"), dict) else {}
    status_text = "\n".join(_texts(message.get("parts")))
    ids = {
        "state": state,
        "agent_task_id": _text_or_none(result.get("id")),
        "agent_context_id": _text_or_none(result.get("contextId")),
    }
    if state in OPEN_STATES:
        return _Outcome(**ids)
    if state in INPUT_STATES:
        # What the agent asks, as the step's input_request (without requested_at: the executor stamps it).
        content = _whole_numbers_as_ints(_content([message.get("parts")]))
        text = content.pop("text", "")
        return _Outcome(output={"state": state, "message": text, "data": content}, **ids)
    if state != "completed":
        if state in ("failed", "rejected", "canceled"):
            error = f"Agent task {state}"
        else:
            error = f"Agent task ended in state '{state}', which is not completed"
        return _Outcome(error=f"{error}: {status_text}" if status_text else error, **ids)

    artifacts = [a.get("parts") for a in result.get("artifacts") or [] if isinstance(a, dict)]
    # Some agents answer in the final status message rather than in an artifact.
    output = _content(artifacts if artifacts else [message.get("parts")])
    output.update(task_id=result.get("id"), context_id=result.get("contextId"))
    return _Outcome(output=_whole_numbers_as_ints(output), **ids)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def task_state(state: Any) -> str:
    """0.3 `input-required` and 1.0 `TASK_STATE_INPUT_REQUIRED` both become `input-required`."""
    state = str(state or "unknown").lower()
    return state.removeprefix("task_state_").replace("_", "-")


def _parts(parts: Any) -> list[dict]:
    return [p for p in parts or [] if isinstance(p, dict)]


def _texts(parts: Any) -> list[str]:
    return [p["text"] for p in _parts(parts) if isinstance(p.get("text"), str) and p.get("kind", "text") == "text"]


def _content(part_lists: list) -> dict:
    """Data parts merged, plus `text` (text parts joined); a text part holding a JSON object is merged as data.

    Data fields win over the joined text, since they are what the agent meant as structure.
    """
    texts: list[str] = []
    data: dict = {}
    for parts in part_lists:
        for part in _parts(parts):
            if "data" in part and part.get("kind", "data") == "data":
                if isinstance(part["data"], dict):
                    data.update(part["data"])
                else:
                    data["data"] = part["data"]
            elif isinstance(part.get("text"), str) and part.get("kind", "text") == "text":
                parsed = _json_object(part["text"])
                if parsed is None:
                    texts.append(part["text"])
                else:
                    data.update(parsed)
    output = {"text": "\n".join(texts)} if texts else {}
    output.update(data)
    return output


def _json_object(text: str) -> dict | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _whole_numbers_as_ints(value: Any) -> Any:
    """1.0 agents carry data parts as protobuf Values, which hold every number as a double (3 -> 3.0).

    JSON does not tell 3 from 3.0, so we turn whole floats back into ints; otherwise a workflow template
    would render a count as "3.0".
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_ints(v) for v in value]
    return value
