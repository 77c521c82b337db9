"""A demo A2A agent built on the a2a-sdk server, speaking A2A 1.0 `SendMessage` and 0.3 `message/send`.

Skills are picked by the `skill` field of the input (default `echo`), or by path: each skill is also its
own agent at `/<skill>` with its own card, so it can be registered on its own. Any skill fails when the
input has `"fail": true` and sleeps first when it has `delay_ms`. `think` and `ask` answer with an
unfinished task (see demo/tasks.py); they are also served with a streaming card at `/think-stream` and
`/ask-stream`, so a client can follow them by `SubscribeToTask` as well as by `GetTask`. Every agent is
served once more under `/0.3` (e.g. `/0.3/think`) with a card that offers only A2A 0.3, as an older agent.
`GET /calls` lists the calls received (bounded) and `GET /cancels` the tasks cancelled; `DELETE` on
either clears it, so tests can check what a workflow run actually called.
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

from demo.tasks import TASK_SKILLS, WAITING_STATES, Thinker, answer, ask, cancel_entry

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


INSTANT_SKILLS: dict[str, tuple[Callable[[dict], Awaitable[dict]], str]] = {
    "echo": (echo, "Returns its input unchanged."),
    "uppercase": (uppercase, "Returns the input's `text` in upper case."),
    "word_count": (word_count, "Counts the words of the input's `text`."),
    "fail": (fail, "Always fails, with the input's `message` if given."),
    "slow": (slow, "Sleeps `seconds` (default 2, at most 60), then echoes its input."),
}
# Every skill with its description; think and ask also have a streaming agent at /<skill>-stream.
SKILLS: dict[str, str] = {name: description for name, (_, description) in INSTANT_SKILLS.items()} | TASK_SKILLS
STREAMING_SKILLS = tuple(TASK_SKILLS)
ONLY_03_PREFIX = "/0.3"  # every agent is also served there with a card that offers A2A 0.3 only


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


def read_reply(context: RequestContext) -> tuple[str | None, dict]:
    """A person's answer: the text parts joined (None without any) and the data parts merged."""
    parts = context.message.parts if context.message else []
    data = {}
    for part in get_data_parts(parts):
        if isinstance(part, dict):
            data.update(whole_numbers_as_ints(part))
    return "\n".join(get_text_parts(parts)) or None, data


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
        self.cancels: deque[dict] = deque(maxlen=limit)

    def add(self, skill: str, correlation_id: str | None, data: dict, context: RequestContext | None = None) -> None:
        entry = {"skill": skill, "correlation_id": correlation_id, "input": data, "at": datetime.now(UTC).isoformat()}
        if context is not None:
            message = context.message
            entry |= {
                "task_id": context.task_id,
                "context_id": context.context_id,
                "message_id": message.message_id if message else None,
                "reply": context.current_task is not None,  # a message to a task that already exists
            }
        self.entries.append(entry)


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
        self.thinker = Thinker()  # this agent's think tasks still running

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        headers = context.call_context.state.get("headers", {})
        correlation_id = headers.get("x-correlation-id")
        task = context.current_task
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        if task is not None:  # a later message in an existing task: the answer to a question, or nothing to do
            text, data = read_reply(context)
            self.calls.add(task_skill(task), correlation_id, {"text": text, "data": data}, context)
            if task.status.state in WAITING_STATES:
                await answer(context, updater, text, data)
            return
        data = read_input(context)
        skill = self.skill or str(data.get("skill") or "echo")
        self.calls.add(skill, correlation_id, data, context)
        # The sdk insists on a Task event before any status update for it.
        task = new_task_from_user_message(context.message)
        task.metadata.update({"skill": skill})  # so a later message or a cancel knows which skill it is
        await event_queue.enqueue_event(task)
        if skill not in SKILLS:
            message = f"Unknown skill {skill!r}; this agent has: {', '.join(SKILLS)}"
            await updater.reject(updater.new_agent_message([new_text_part(message)]))
            return
        try:
            if data.get("delay_ms"):
                await asyncio.sleep(min(float(data["delay_ms"]) / 1000, MAX_SLOW_SECONDS))
            if skill == "think":
                await self.thinker.start(context, updater, data)
                return
            if skill == "ask":
                await ask(updater, data)
                return
            await updater.start_work()
            if data.get("fail") is True:
                raise SkillFailed(data.get("message") or "Demo agent failed on purpose")
            output = await INSTANT_SKILLS[skill][0](data)
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
        stopped = self.thinker.stop(context.task_id)
        skill = task_skill(context.current_task) if context.current_task else self.skill
        self.calls.cancels.append(cancel_entry(context, skill, stopped))
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.cancel(updater.new_agent_message([new_text_part("Cancelled")]))


def task_skill(task) -> str | None:
    return task.metadata["skill"] if "skill" in task.metadata else None


def agent_card(
    url: str, name: str, skills: list[str], streaming: bool = False, versions: tuple[str, ...] = ("1.0", "0.3")
) -> AgentCard:
    return AgentCard(
        name=name,
        description="Demo A2A agent for development and tests.",
        version="1.0.0",
        # Both interfaces share one endpoint; listing the 0.3 one also makes the sdk add the 0.3 card fields.
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version=version) for version in versions
        ],
        capabilities=AgentCapabilities(streaming=streaming, push_notifications=False),
        default_input_modes=["application/json", "text/plain"],
        default_output_modes=["application/json", "text/plain"],
        skills=[AgentSkill(id=s, name=s, description=SKILLS[s], tags=["demo"]) for s in skills],
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

    def listing(entries: deque):
        async def endpoint(request: Request) -> Response:
            if request.method == "DELETE":
                entries.clear()
                return Response(status_code=204)
            return JSONResponse(list(entries))

        return endpoint

    routes = [
        Route("/calls", listing(calls.entries), methods=["GET", "DELETE"]),
        Route("/cancels", listing(calls.cancels), methods=["GET", "DELETE"]),
    ]
    agents = [(f"/{skill}", f"Demo {skill}", [skill], False) for skill in SKILLS]
    agents += [(f"/{skill}-stream", f"Demo {skill} (streaming)", [skill], True) for skill in STREAMING_SKILLS]
    agents.append(("/", "Demo agent", list(SKILLS), False))
    for path, name, skills, streaming in agents:
        skill = skills[0] if len(skills) == 1 else None
        card = agent_card(base_url + path, name, skills, streaming)
        routes += agent_routes(path, card, DemoExecutor(calls, skill))
        # The same agent as an older one that speaks only 0.3, so clients can be tried on that version too.
        old_path = ONLY_03_PREFIX + path
        old_card = agent_card(base_url + old_path, f"{name} (A2A 0.3)", skills, streaming, versions=("0.3",))
        routes += agent_routes(old_path, old_card, DemoExecutor(calls, skill))
    app = Starlette(routes=routes)
    app.state.calls = calls
    return app
