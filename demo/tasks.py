"""The demo agent's skills that answer with an unfinished task: `think` and `ask`.

`think` answers at once with the task `working` and finishes it `seconds` later from a background
asyncio task that writes to the same event queue, so a blocking `SendMessage` gets the working task
back right away (the sdk answers it when `execute` returns) while `GetTask` and `SubscribeToTask`
see the later states (the sdk keeps the task's queue open until a terminal state). A streaming send
(`SendStreamingMessage` / `message/stream`) instead stays open until the task ends.

`ask` ends its first call `input-required` (or `auth-required` with `"auth": true`) with the question
as a text part and a data part; the next message in that task completes it with the answer.
"""

import asyncio
import logging
import math
from datetime import UTC, datetime

from a2a.helpers import get_text_parts, new_data_part, new_text_part
from a2a.server.agent_execution import RequestContext
from a2a.server.tasks import TaskUpdater
from a2a.types.a2a_pb2 import TaskState

logger = logging.getLogger(__name__)

MAX_THINK_SECONDS = 600
DEFAULT_THINK_SECONDS = 2
DEFAULT_QUESTION = "What should I answer?"
WAITING_STATES = (TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED)
STREAMING_METHODS = ("SendStreamingMessage", "message/stream")

TASK_SKILLS = {
    "think": f"Answers `working` at once and completes `seconds` later (default {DEFAULT_THINK_SECONDS}, "
    f"at most {MAX_THINK_SECONDS}) with its input and `thought_seconds`.",
    "ask": "Asks `question` (`input-required`; `auth-required` when `auth` is true); the next message in the "
    "task completes it with `{question, answer, data}`.",
}


def think_seconds(data: dict) -> float:
    """Raises ValueError (the task then fails) for a `seconds` that is not a number >= 0."""
    seconds = float(data.get("seconds", DEFAULT_THINK_SECONDS))
    if not seconds >= 0:  # also NaN
        raise ValueError(f"seconds must be a number >= 0, not {data.get('seconds')!r}")
    return min(seconds, MAX_THINK_SECONDS)


class Thinker:
    """Runs the `think` tasks in the background and cancels them on request."""

    def __init__(self):
        self.running: dict[str, asyncio.Task] = {}

    async def start(self, context: RequestContext, updater: TaskUpdater, data: dict) -> None:
        seconds = think_seconds(data)
        await updater.start_work(updater.new_agent_message([new_text_part(f"Thinking for {seconds:g} s")]))
        job = asyncio.create_task(self.finish(updater, seconds, data), name=f"think:{context.task_id}")
        self.running[context.task_id] = job
        job.add_done_callback(lambda _: self.running.pop(context.task_id, None))
        if context.call_context.state.get("method") in STREAMING_METHODS:
            await job  # the sdk ends a streamed send when `execute` returns: keep it open to the end

    async def finish(self, updater: TaskUpdater, seconds: float, data: dict) -> None:
        clock = asyncio.get_running_loop().time
        try:
            started = clock()
            # A progress update each second, so a streaming follower sees the task change.
            for second in range(1, math.ceil(seconds)):
                await asyncio.sleep(max(0.0, started + second - clock()))
                progress = updater.new_agent_message([new_text_part(f"Thought {second} of {seconds:g} s")])
                await updater.update_status(TaskState.TASK_STATE_WORKING, progress)
            await asyncio.sleep(max(0.0, started + seconds - clock()))
            if data.get("fail") is True:
                message = data.get("message") or "Demo agent failed on purpose"
                await updater.failed(updater.new_agent_message([new_text_part(str(message))]))
                return
            await updater.add_artifact([new_data_part({**data, "thought_seconds": seconds})], name="result")
            await updater.complete()
        except Exception:
            # The queue is gone (the server shuts down) or the task ended otherwise: nothing to report to.
            logger.warning("think task %s could not finish", updater.task_id, exc_info=True)

    def stop(self, task_id: str) -> bool:
        job = self.running.pop(task_id, None)
        if job is None:
            return False
        job.cancel()
        return True


def question_message(updater: TaskUpdater, data: dict):
    question = str(data.get("question") or DEFAULT_QUESTION)
    details = {"question": question}
    if isinstance(data.get("options"), list):
        details["options"] = data["options"]
    return updater.new_agent_message([new_text_part(question), new_data_part(details)])


async def ask(updater: TaskUpdater, data: dict) -> None:
    message = question_message(updater, data)
    if data.get("auth") is True:
        await updater.requires_auth(message)
    else:
        await updater.requires_input(message)


async def answer(context: RequestContext, updater: TaskUpdater, text: str | None, data: dict) -> None:
    """The reply (`text` and merged `data` parts) to a waiting `ask` task: completes it, or asks again
    when the reply is empty."""
    task = context.current_task
    asked = task.status.message
    question = "\n".join(get_text_parts(asked.parts)) or DEFAULT_QUESTION
    if text is None and not data:
        await updater.update_status(task.status.state, asked)
        return
    await updater.add_artifact([new_data_part({"question": question, "answer": text, "data": data})], name="result")
    await updater.complete()


def cancel_entry(context: RequestContext, skill: str, stopped: bool) -> dict:
    task = context.current_task
    return {
        "task_id": context.task_id,
        "context_id": context.context_id,
        "skill": skill,
        "state": TaskState.Name(task.status.state) if task else None,
        "was_running": stopped,
        "at": datetime.now(UTC).isoformat(),
    }
