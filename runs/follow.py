"""The bridge's followers: agent tasks (A2A) that answered `submitted` / `working`, followed to their end.

A followed task holds no call slot, no turn of its agent's max_concurrency and no circuit-breaker
ticket (its call is done: the agent answered); it holds one of BRIDGE_MAX_FOLLOWING places. Its
Kafka offset stays uncommitted until its result is published, so a bridge that restarts gets the
task again and, finding the agent's task id on the step (stored here before following starts), follows
that task instead of calling the agent again. The price: a long follow holds back the commits of
later offsets of its partition (they are committed together once it ends; a restart redelivers them,
and the bridge's dedupe and the executor's make that harmless).

Following goes through runs/abandon.py like a call: when the step ends meanwhile (run cancelled, step
timed out) the follow stops and the agent gets a CancelTask. A follow that ends without a final state
(the deadline, a task id that changed, GetTask errors) cancels the agent's task too (best effort).
"""

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings

from agents.a2a import CallResult, card_streams, discover_protocol
from agents.a2a_tasks import TaskRef, cancel_task, follow_task, is_final
from agents.agent_http import AgentClient
from agents.card import auth_headers
from agents.models import Agent
from core.db import connections_refresh
from runs.abandon import Abandon, bridge_log
from runs.choices import LogLevel, StepStatus
from runs.models import StepExecution

log = logging.getLogger(__name__)
CANCELLED_KEPT = 10_000  # agent task ids this bridge cancelled lately: a cancel message for one is not sent twice


@dataclass(frozen=True)
class Follow:
    """A task to follow: the agent's task, and how long the step waits for it."""

    url: str
    headers: dict[str, str]
    agent_task_id: str
    agent_context_id: str | None
    seconds: float
    state: str = "submitted"
    protocol: str | None = None  # None: from the agent card
    resumed: bool = False  # known from the step (a restart, a copy): the agent was not called again


def ids_store(correlation_id: str, agent_task_id: str, agent_context_id: str | None) -> int:
    """Writes the agent's task on the step before it is followed (a restart resumes from it)."""
    connections_refresh()
    rows = StepExecution.objects.filter(correlation_id=correlation_id, status=StepStatus.RUNNING)
    return rows.update(agent_task_id=agent_task_id[:300], agent_context_id=(agent_context_id or "")[:300] or None)


def agent_address(name: str) -> tuple[str, dict] | None:
    connections_refresh()
    agent = Agent.objects.live().filter(name=name).first()
    return (agent.url, auth_headers(agent)) if agent is not None else None


class Followers:
    def __init__(self, db: ThreadPoolExecutor, retrying: Callable, abandon: Abandon):
        self.db, self.retrying, self.abandon = db, retrying, abandon
        self.places = asyncio.Semaphore(settings.BRIDGE_MAX_FOLLOWING)
        self.count = 0  # tasks holding a place (read by the bridge's poll())
        self.cancelled: OrderedDict[str, None] = OrderedDict()

    async def enter(self) -> None:
        """Takes a place; waited for with the call slot still held, so a full pool slows the consumer."""
        await self.places.acquire()
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        self.places.release()

    async def db_call(self, work, *args):
        return await asyncio.get_running_loop().run_in_executor(self.db, self.retrying, work, *args)

    async def note(self, task: dict, message: str, data: dict, level: str = LogLevel.INFO) -> None:
        try:
            await self.db_call(bridge_log, task, message, data, level)
        except Exception:  # noqa: BLE001 - the log must not cost the follow
            log.exception("could not log on the run of task %s", task.get("task_id"))

    async def follow(self, client: AgentClient, task: dict, follow: Follow) -> CallResult | None:
        """Follows the agent's task to its end: the result to publish, or None when the step ended meanwhile."""
        name = task.get("agent_name")
        headers = {**follow.headers, "X-Correlation-ID": str(task.get("correlation_id"))}
        protocol = follow.protocol or await discover_protocol(client, follow.url, headers)
        ref = TaskRef(follow.url, headers, protocol, follow.agent_task_id, follow.agent_context_id)
        streams = card_streams(follow.url)
        if not follow.resumed:
            await self.db_call(ids_store, str(task["correlation_id"]), ref.task_id, ref.context_id)
        how = "streaming" if streams else "polling"
        verb = (
            "resumed following"
            if follow.resumed
            else f"answered with task '{ref.task_id}' ({follow.state}); following it"
        )
        await self.note(
            task,
            f"Agent '{name}' {verb} ({how})",
            {"agent_task_id": ref.task_id, "agent_context_id": ref.context_id, "state": follow.state},
        )
        work = follow_task(client, ref, seconds=follow.seconds, streams=streams, state=follow.state)
        result = await self.abandon.call(task, work)
        if result is None:  # the step ended (cancelled, timed out): the agent need not go on
            await self.cancel(client, task, ref, "step no longer running")
            return None
        if not is_final(result):
            await self.cancel(client, task, ref, result.error or "not followed to its end")
        return result

    async def cancel(self, client: AgentClient, task: dict, ref: TaskRef, reason: str) -> None:
        """CancelTask / tasks/cancel, best effort, logged on the run."""
        if ref.task_id in self.cancelled:
            return
        self.cancelled[ref.task_id] = None
        while len(self.cancelled) > CANCELLED_KEPT:
            self.cancelled.popitem(last=False)
        try:
            async with asyncio.timeout(15):
                error = await cancel_task(client, ref)
        except TimeoutError:
            error = "no answer within 15 s"
        name = task.get("agent_name")
        if error:
            message, level = (
                f"Agent '{name}' task '{ref.task_id}' could not be cancelled ({reason}): {error}",
                LogLevel.WARNING,
            )
        else:
            message, level = f"Agent '{name}' task '{ref.task_id}' cancelled ({reason})", LogLevel.INFO
        await self.note(task, message, {"agent_task_id": ref.task_id, "reason": reason}, level)

    async def cancel_message(self, client: AgentClient, task: dict) -> None:
        """An `agent_task_cancel` from the executor (run cancelled, step timed out): no result is published."""
        agent_task_id = task.get("agent_task_id")
        if not isinstance(agent_task_id, str) or not agent_task_id:
            return
        address = await self.db_call(agent_address, str(task.get("agent_name") or ""))
        if address is None:
            await self.note(
                task,
                f"Agent '{task.get('agent_name')}' task '{agent_task_id}' not cancelled: the agent is not registered",
                {"agent_task_id": agent_task_id},
                LogLevel.WARNING,
            )
            return
        url, headers = address
        headers = {**headers, "X-Correlation-ID": str(task.get("correlation_id"))}
        protocol = await discover_protocol(client, url, headers)
        ref = TaskRef(url, headers, protocol, agent_task_id, task.get("agent_context_id"))
        await self.cancel(client, task, ref, str(task.get("reason") or "cancel requested"))
