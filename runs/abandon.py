"""The bridge abandons a call whose step no longer waits for it.

A cancelled run ends its steps at once (CANCELLED), the executor ends a try that passed its deadline
(FAILED "Timed out ..."), a parallel block cancels its other children when one fails. The agent may
still be working on such a call, and the bridge would hold its slot until the agent answers or the
call times out. So while calls are in flight, one query every BRIDGE_ABANDON_CHECK_MS asks which of
their steps are no longer RUNNING; those calls are cancelled, logged on the run, and end without a
result (nothing waits for one): the slot is freed and the offset committed as for any finished task.
Agent tasks the bridge follows (runs/follow.py) are watched the same way; an abandoned follow also
sends the agent a CancelTask.

Why the database and not the cancellation topic: the step's row knows every way a step ends (the
topic carries run cancellations only, not timeouts or a block deciding without a child), the API
writes it in the cancel's own transaction, and one query on the unique correlation id per second
and bridge process costs nothing next to the calls.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from core.db import connections_refresh, storable
from runs.choices import LogLevel, LogSource, StepStatus
from runs.models import RunLog, StepExecution

log = logging.getLogger(__name__)
BATCH = 500  # correlation ids per query


@dataclass
class Call:
    job: asyncio.Task
    task: dict
    started: float = field(default_factory=time.monotonic)
    reason: str | None = None  # set when abandoned: why the step no longer waits


def steps_no_longer_running(correlation_ids: list[str]) -> list[tuple[str, str, str]]:
    """(correlation id, status, error) of those steps no longer RUNNING. Runs in a worker thread."""
    connections_refresh()
    found = []
    for start in range(0, len(correlation_ids), BATCH):
        rows = StepExecution.objects.filter(correlation_id__in=correlation_ids[start : start + BATCH])
        found += rows.exclude(status=StepStatus.RUNNING).values_list("correlation_id", "status", "error_message")
    return found


def reason_of(status: str, error: str) -> str:
    if status == StepStatus.FAILED and error.startswith("Timed out"):
        return "step timed out"
    return f"step {status.lower()}"


def bridge_log(task: dict, message: str, data: dict, level: str = LogLevel.INFO, at=None) -> None:
    """One entry of the bridge on the task's run (every bridge entry is written here), stamped `at`
    (when it happened; default now). Runs in a worker thread: it writes the database."""
    connections_refresh()
    RunLog.objects.create(
        run_id=task["run_id"],
        step_id=task.get("step_id"),
        level=level,
        source=LogSource.BRIDGE,
        message=storable(message),
        data={"task_id": task.get("task_id"), **data},
        timestamp=at or timezone.now(),
    )


def abandoned_log(task: dict, reason: str, waited_ms: int, at) -> None:
    message = f"Agent '{task.get('agent_name')}' call abandoned: {reason}"
    bridge_log(task, message, {"waited_ms": waited_ms}, at=at)


class Abandon:
    """The calls in flight of one bridge, and the watcher that abandons those whose step ended."""

    def __init__(self, db: ThreadPoolExecutor, retrying: Callable):
        self.db, self.retrying = db, retrying  # the bridge's database threads and its retry of passing errors
        self.calls: dict[str, Call] = {}
        self.watcher: asyncio.Task | None = None

    async def call(self, task: dict, work: Awaitable):
        """Awaits `work` (the agent call of a task our executor dispatched): its result, or None when
        the call was abandoned (and logged)."""
        correlation_id = str(task["correlation_id"])
        entry = Call(job=asyncio.ensure_future(work), task=task)
        self.calls[correlation_id] = entry
        if self.watcher is None or self.watcher.done():
            self.watcher = asyncio.create_task(self.watch())
        try:
            return await entry.job
        except asyncio.CancelledError:
            if entry.reason is None or asyncio.current_task().cancelling():
                raise  # the bridge itself is being stopped
        finally:
            if self.calls.get(correlation_id) is entry:
                del self.calls[correlation_id]
        waited_ms = int((time.monotonic() - entry.started) * 1000)
        log.info("call of task %s abandoned after %d ms: %s", task.get("task_id"), waited_ms, entry.reason)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                self.db, self.retrying, abandoned_log, task, entry.reason, waited_ms, timezone.now()
            )
        except Exception:  # noqa: BLE001 - the database away for long: the call is abandoned all the same
            log.exception("could not log the abandoned call of task %s", task.get("task_id"))
        return None

    async def watch(self) -> None:
        """Runs while calls are in flight: one query per interval for all of them."""
        loop = asyncio.get_running_loop()
        while self.calls:
            await asyncio.sleep(settings.BRIDGE_ABANDON_CHECK_MS / 1000)
            if not self.calls:
                return
            try:
                ended = await loop.run_in_executor(self.db, steps_no_longer_running, list(self.calls))
            except Exception as exc:  # noqa: BLE001 - the database away: the calls go on, the next check tries again
                log.warning("could not check the steps of the calls in flight (%s)", exc)
                continue
            for correlation_id, status, error in ended:
                entry = self.calls.get(correlation_id)
                if entry is not None and entry.reason is None and entry.job.cancel():
                    entry.reason = reason_of(status, error or "")
