"""A demo A2A agent built on the a2a-sdk server, speaking A2A 1.0 `SendMessage` and 0.3 `message/send`.

Skills are picked by the `skill` field of the input (default `echo`), or by path: each skill is also its
own agent at `/<skill>` with its own card, so it can be registered on its own. Any skill fails when the
input has `"fail": true` and sleeps first when it has `delay_ms`. `GET /calls` lists the calls received
(bounded) and `DELETE /calls` clears them, so tests can check what a workflow run actually called.
"""

import asyncio
import json
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from a2a.helpers import (
    get_data_parts,
    get_text_parts,
    new_data_part,
    new_task_from_user_message,
    new_text_part,
)
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentSkill
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CALL_LOG_LIMIT = 10_000
TASK_STORE_LIMIT = 10_000
MAX_SLOW_SECONDS = 60


class SkillFailed(Exception):
    pass


async def echo(data: dict) -> dict:
    return data


async def uppercase(data: dict) -> dict:
    return {"text": str(data.get("text", "")).upper()}


async def word_count(data: dict) -> dict:
    words = str(data.get("text", "")).split()
    return {"count": len(words), "words": words}


async def fail(data: dict) -> dict:
    raise SkillFailed(data.get("message") or "Demo agent failed on purpose")


async def slow(data: dict) -> dict:
    await asyncio.sleep(min(float(data.get("seconds", 2)), MAX_SLOW_SECONDS))
    return data


SKILLS: dict[str, tuple[Callable[[dict], Awaitable[dict]], str]] = {
    "echo": (echo, "Returns its input unchanged."),
    "uppercase": (uppercase, "Returns the input's `text` in upper case."),
    "word_count": (word_count, "Counts the words of the input's `text`."),
    "fail": (fail, "Always fails, with the input's `message` if given."),
    "slow": (slow, "Sleeps `seconds` (default 2, at most 60), then echoes its input."),
}


def read_input(context: RequestContext) -> dict:
    """The input object: the data part if there is one, else the text (parsed when it is a JSON object)."""
    parts = context.message.parts if context.message else []
    for data in get_data_parts(parts):
        if isinstance(data, dict):
            return whole_numbers_as_ints(data)
    text = "\n".join(get_text_parts(parts))
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"text": text}


def whole_numbers_as_ints(value):
    """Data parts arrive as protobuf Values, which turn every number into a double (3 -> 3.0); undo that."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers_as_ints(v) for v in value]
    return value


class CallLog:
    def __init__(self, limit: int = CALL_LOG_LIMIT):
        self.entries: deque[dict] = deque(maxlen=limit)

    def add(self, skill: str, correlation_id: str | None, data: dict) -> None:
        self.entries.append(
            {"skill": skill, "correlation_id": correlation_id, "input": data, "at": datetime.now(UTC).isoformat()}
        )


class BoundedTaskStore(InMemoryTaskStore):
    """Forgets the oldest tasks, so a long benchmark against the demo agent does not grow it without bound."""

    def __init__(self, limit: int = TASK_STORE_LIMIT):
        super().__init__()
        self.limit = limit
        self.owners: OrderedDict = OrderedDict()

    async def save(self, task, context) -> None:
        await super().save(task, context)
        self.owners[task.id] = context
        self.owners.move_to_end(task.id)
        while len(self.owners) > self.limit:
            task_id, owner_context = self.owners.popitem(last=False)
            await super().delete(task_id, owner_context)


class DemoExecutor(AgentExecutor):
    def __init__(self, calls: CallLog, skill: str | None = None):
        self.calls = calls
        self.skill = skill

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        data = read_input(context)
        skill = self.skill or str(data.get("skill") or "echo")
        headers = context.call_context.state.get("headers", {})
        self.calls.add(skill, headers.get("x-correlation-id"), data)
        # The sdk insists on a Task event before any status update for it.
        await event_queue.enqueue_event(context.current_task or new_task_from_user_message(context.message))
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.start_work()
        if skill not in SKILLS:
            message = f"Unknown skill {skill!r}; this agent has: {', '.join(SKILLS)}"
            await updater.reject(updater.new_agent_message([new_text_part(message)]))
            return
        try:
            if data.get("delay_ms"):
                await asyncio.sleep(min(float(data["delay_ms"]) / 1000, MAX_SLOW_SECONDS))
            if data.get("fail") is True:
                raise SkillFailed(data.get("message") or "Demo agent failed on purpose")
            output = await SKILLS[skill][0](data)
        except (SkillFailed, TypeError, ValueError) as exc:
            # Bad input (e.g. `"seconds": "soon"`) fails the task with a message rather than an internal error.
            await updater.failed(updater.new_agent_message([new_text_part(str(exc))]))
            return
        parts = [new_data_part(output)]
        if isinstance(output.get("text"), str):
            parts.append(new_text_part(output["text"]))
        await updater.add_artifact(parts, name="result")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.cancel(updater.new_agent_message([new_text_part("Cancelled")]))


def agent_card(url: str, name: str, skills: list[str]) -> AgentCard:
    return AgentCard(
        name=name,
        description="Demo A2A agent for development and tests.",
        version="1.0.0",
        # Both interfaces share one endpoint; listing the 0.3 one also makes the sdk add the 0.3 card fields.
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="0.3"),
        ],
        capabilities=AgentCapabilities(streaming=False, push_notifications=False),
        default_input_modes=["application/json", "text/plain"],
        default_output_modes=["application/json", "text/plain"],
        skills=[AgentSkill(id=s, name=s, description=SKILLS[s][1], tags=["demo"]) for s in skills],
    )


def agent_routes(path: str, card: AgentCard, executor: AgentExecutor) -> list[Route]:
    handler = DefaultRequestHandler(agent_executor=executor, task_store=BoundedTaskStore(), agent_card=card)
    return [
        *create_agent_card_routes(card, card_url=path.rstrip("/") + "/.well-known/agent-card.json"),
        *create_jsonrpc_routes(handler, rpc_url=path, enable_v0_3_compat=True),
    ]


def build_app(base_url: str) -> Starlette:
    """The demo agent as an ASGI app; `base_url` is where clients reach it (it goes into the agent cards)."""
    base_url = base_url.rstrip("/")
    calls = CallLog()

    async def call_log(request: Request) -> Response:
        if request.method == "DELETE":
            calls.entries.clear()
            return Response(status_code=204)
        return JSONResponse(list(calls.entries))

    routes = [Route("/calls", call_log, methods=["GET", "DELETE"])]
    for skill in SKILLS:
        card = agent_card(f"{base_url}/{skill}", f"Demo {skill}", [skill])
        routes += agent_routes(f"/{skill}", card, DemoExecutor(calls, skill))
    routes += agent_routes("/", agent_card(base_url + "/", "Demo agent", list(SKILLS)), DemoExecutor(calls))
    app = Starlette(routes=routes)
    app.state.calls = calls
    return app
