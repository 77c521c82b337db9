"""Following an agent's unfinished A2A task to its end, and cancelling one.

Both protocol versions, as plain JSON-RPC for the same reason as agents/a2a.py (an sdk client speaks
one version; the bridge picks per agent): 1.0 `GetTask` / `SubscribeToTask` / `CancelTask` with the
`A2A-Version: 1.0` header, 0.3 `tasks/get` / `tasks/resubscribe` / `tasks/cancel`. All take `{"id"}`.

`follow_task` subscribes when the agent's card says it streams, otherwise (or when the stream breaks:
garbage, an error, the connection dropped, the stream ending early) polls with backoff from
A2A_POLL_INITIAL_MS up to A2A_POLL_MAX_MS. A stream is only a signal: when it says the task reached a
terminal or input state the task is read once with GetTask, so its artifacts come whole however the
agent chunked them. It never raises for agent problems: the `CallResult` says what ended it.
"""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from django.conf import settings

from agents.a2a import (
    CONNECT_TIMEOUT,
    OPEN_STATES,
    PROTOCOL_10,
    CallResult,
    _Outcome,
    _snippet,
    parse_response,
    task_state,
)
from agents.agent_http import AgentClient, Answer, TransportError
from core import tracing

METHODS = {
    "get": {PROTOCOL_10: "GetTask", "0.3": "tasks/get"},
    "subscribe": {PROTOCOL_10: "SubscribeToTask", "0.3": "tasks/resubscribe"},
    "cancel": {PROTOCOL_10: "CancelTask", "0.3": "tasks/cancel"},
}
REQUEST_TIMEOUT = 10.0  # one GetTask / CancelTask; the follow's own deadline bounds the whole
STREAM_LINE_BYTES = 1_048_576  # an SSE event longer than this is garbage


@dataclass(frozen=True)
class TaskRef:
    """An agent's task as the bridge knows it: where the agent is and which task."""

    url: str
    headers: dict[str, str]  # auth headers (agents.card.auth_headers) and X-Correlation-ID
    protocol: str
    task_id: str
    context_id: str | None = None


class StreamBroken(Exception):
    """The stream cannot be used any more: the follower polls instead."""


def _request(ref: TaskRef, kind: str) -> tuple[dict, dict]:
    body = {
        "jsonrpc": "2.0",
        "id": str(uuid.uuid4()),
        "method": METHODS[kind][ref.protocol],
        "params": {"id": ref.task_id},
    }
    headers = {"Content-Type": "application/json", **ref.headers}
    if ref.protocol == PROTOCOL_10:
        headers["A2A-Version"] = PROTOCOL_10
    tracing.inject(headers)
    return body, headers


async def _call(client: AgentClient, ref: TaskRef, kind: str) -> _Outcome:
    """One GetTask / CancelTask: the task as `parse_result` reads it, or an error (`retryable` when it
    may pass: network, HTTP 5xx / 429)."""
    body, headers = _request(ref, kind)
    headers["Accept"] = "application/json"
    try:
        async with (
            asyncio.timeout(REQUEST_TIMEOUT),
            client.post(
                ref.url, body, headers, connect_timeout=CONNECT_TIMEOUT, read_timeout=REQUEST_TIMEOUT
            ) as answer,
        ):
            content = await answer.body(settings.AGENT_RESPONSE_MAX_BYTES, truncate=True)
            status, answer_headers = answer.status, answer.headers
    except (TransportError, TimeoutError) as exc:
        name = "ReadTimeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        return _Outcome(error=f"{METHODS[kind][ref.protocol]} failed: {name}", retryable=True)
    outcome = parse_response(status, answer_headers, content)
    if outcome.error and outcome.state is None:
        outcome.error = f"{METHODS[kind][ref.protocol]} failed: {outcome.error}"
    return outcome


async def get_task(client: AgentClient, ref: TaskRef) -> _Outcome:
    return await _call(client, ref, "get")


async def cancel_task(client: AgentClient, ref: TaskRef) -> str | None:
    """Asks the agent to cancel its task (best effort): None when it took the request, else why not."""
    outcome = await _call(client, ref, "cancel")
    if outcome.error and outcome.state is None:
        return outcome.error
    return None


async def task_events(client: AgentClient, ref: TaskRef) -> AsyncIterator[tuple[str | None, str]]:
    """(task id, state) of each event the agent streams for the task; raises StreamBroken when the
    stream cannot be read (the caller polls instead)."""
    body, headers = _request(ref, "subscribe")
    headers["Accept"] = "text/event-stream"
    try:
        # No read timeout: a quiet task may send nothing for minutes; the follow's deadline ends the wait.
        async with client.post(ref.url, body, headers, connect_timeout=CONNECT_TIMEOUT, read_timeout=None) as answer:
            content_type = answer.headers.get("content-type", "")
            if answer.status != 200 or not content_type.startswith("text/event-stream"):
                raise StreamBroken(f"the agent answered HTTP {answer.status} ({content_type or 'no type'})")
            async for data in _sse_data(answer):
                yield _event_state(data)
    except TransportError as exc:
        raise StreamBroken(f"the stream dropped ({type(exc).__name__})") from exc
    raise StreamBroken("the stream ended before the task did")


async def _sse_data(answer: Answer) -> AsyncIterator[str]:
    lines: list[str] = []
    try:
        async for line in answer.lines(STREAM_LINE_BYTES):
            if line == "":
                if lines:
                    yield "\n".join(lines)
                    lines = []
            elif line.startswith("data:"):
                lines.append(line[5:].lstrip(" "))
            # Other fields (event:, id:, retry:) and comments (":") carry nothing we need.
    except ValueError:
        raise StreamBroken("an event is too long") from None


def _event_state(data: str) -> tuple[str | None, str]:
    try:
        message = json.loads(data)
    except ValueError:
        raise StreamBroken(f"the agent streamed something that is not JSON: {_snippet(data)}") from None
    if not isinstance(message, dict) or "result" not in message:
        error = message.get("error") if isinstance(message, dict) else None
        raise StreamBroken(f"the agent streamed {'an error' if error else 'no JSON-RPC result'}: {_snippet(data)}")
    result = message["result"]
    if not isinstance(result, dict):
        raise StreamBroken(f"the agent streamed an event that is not an object: {_snippet(data)}")
    # 1.0 wraps the event ({"task"}, {"statusUpdate"}, ...); 0.3 tags it with `kind`.
    for key in ("task", "statusUpdate", "status-update"):
        if isinstance(result.get(key), dict):
            result = result[key]
            break
    if isinstance(result.get("artifactUpdate"), dict) or result.get("kind") == "artifact-update":
        return None, "working"  # a piece of the answer: the task goes on
    if isinstance(result.get("message"), dict) or result.get("kind") == "message":
        return None, "working"
    status = result.get("status") if isinstance(result.get("status"), dict) else None
    if status is None:
        raise StreamBroken(f"the agent streamed an event without a status: {_snippet(data)}")
    task_id = result.get("taskId") or result.get("id")
    return (task_id if isinstance(task_id, str) else None), task_state(status.get("state"))


async def _watch_stream(client: AgentClient, ref: TaskRef, seen: list) -> None:
    """Returns once the stream says the task left its open states; `seen` gets the last state."""
    # aclosing: leaving early closes the HTTP stream now, not whenever the generator is collected.
    async with contextlib.aclosing(task_events(client, ref)) as events:
        async for task_id, state in events:
            if task_id and task_id != ref.task_id:
                raise TaskIdChanged(task_id)
            seen.append(state)
            if state not in OPEN_STATES:
                return


class TaskIdChanged(Exception):
    pass


async def follow_task(
    client: AgentClient, ref: TaskRef, *, seconds: float, streams: bool, state: str = "submitted"
) -> CallResult:
    """Follows the task until it is completed / failed / canceled / rejected, waits for input, or
    `seconds` pass. The result has the task's last `state`; an error names it when the deadline came."""
    started = time.monotonic()
    seen = [state]
    last_error: str | None = None
    requests = 0

    def result(outcome: _Outcome | None = None, error: str | None = None) -> CallResult:
        if outcome is not None and outcome.state:
            seen.append(outcome.state)
        failed = error or (outcome.error if outcome else None)
        return CallResult(
            ok=failed is None,
            output=None if failed or outcome is None else outcome.output,
            error=failed,
            duration_ms=int((time.monotonic() - started) * 1000),
            attempts=requests,
            state=seen[-1],
            agent_task_id=ref.task_id,
            agent_context_id=(outcome.agent_context_id if outcome else None) or ref.context_id,
            protocol=ref.protocol,
        )

    try:
        async with asyncio.timeout(max(seconds, 0)):
            if streams:
                try:
                    requests += 1
                    await _watch_stream(client, ref, seen)
                except StreamBroken as exc:
                    last_error = f"stream: {exc}"  # polled from here on
                except TaskIdChanged as exc:
                    return result(error=_changed(ref, str(exc), seen[-1]))
            delay = settings.A2A_POLL_INITIAL_MS / 1000
            while True:
                requests += 1
                outcome = await get_task(client, ref)
                if outcome.error is None and outcome.state is None:
                    outcome = _Outcome(error="the agent answered with a message, not the task")
                if outcome.state is not None:
                    if outcome.agent_task_id and outcome.agent_task_id != ref.task_id:
                        return result(error=_changed(ref, outcome.agent_task_id, seen[-1]))
                    if outcome.state not in OPEN_STATES:
                        return result(outcome)  # completed, failed, input needed: the result says which
                    seen.append(outcome.state)
                elif not outcome.retryable:
                    # A JSON-RPC error (unknown task, ...) or an answer that is no task: waiting changes nothing.
                    return result(
                        error=f"Could not follow agent task '{ref.task_id}' (last state '{seen[-1]}'): {outcome.error}"
                    )
                else:
                    last_error = outcome.error  # the network or a 5xx: tried again until the deadline
                await asyncio.sleep(delay)
                delay = min(delay * 2, settings.A2A_POLL_MAX_MS / 1000)
    except TimeoutError:
        error = f"Agent task '{ref.task_id}' was still '{seen[-1]}' at the step's deadline ({int(seconds * 1000)} ms)"
        if last_error:
            error += f"; last error: {last_error}"
        return result(error=error)


def _changed(ref: TaskRef, new_id: str, state: str) -> str:
    return f"Agent changed its task id midway (from '{ref.task_id}' to '{_snippet(new_id)}'; last state '{state}')"


def is_final(result: CallResult) -> bool:
    """The task reached a state it does not leave by itself: nothing to cancel."""
    return result.state not in OPEN_STATES
