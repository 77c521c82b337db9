"""The bridge's side of the circuit breakers (asyncio): ask before a call, wait while the breaker is open,
report how the call ended. The store is blocking (Redis or the database), so it runs in the bridge's
worker threads.

A store that cannot be reached lets calls through (logged): the breaker protects agents, it must not
become what stops every step.

The common case costs the store almost nothing (measured: a read and a locked write per call were a
sixth of the bridge's time): a closed breaker's answer is kept for ADMIT_KEEP_SECONDS, and successes
while it is closed are written together, SUCCESSES_EVERY_SECONDS after the first of them. A failure,
a half-open trial and every change of state are written at once (with the successes before them).
So another bridge's opening is seen within ADMIT_KEEP_SECONDS, and the shared counts lag by at most
SUCCESSES_EVERY_SECONDS.
"""

import asyncio
import logging
import time
from collections import defaultdict
from datetime import UTC, datetime

from django.conf import settings

from agents import breaker
from agents.breaker_store import circuit_admit, circuit_record, circuit_release, circuit_successes
from core.db import connections_refresh

log = logging.getLogger(__name__)
# How often a waiting task asks the shared store again: another bridge may have run the trial.
POLL_SECONDS = 0.5
# While the store is away, its warning is logged at most this often (not once per call).
WARN_EVERY_SECONDS = 60
ADMIT_KEEP_SECONDS = 0.5
SUCCESSES_EVERY_SECONDS = 1.0


def _in_thread(work, *args):
    connections_refresh()  # a worker thread's connection may have gone stale (the database store)
    return work(*args)


def _when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else "?"


class CircuitBreakers:
    def __init__(self, executor):
        self.executor = executor
        self.changed: dict[str, asyncio.Event] = {}  # agent key -> set when this process changes its state
        self.warned_at = float("-inf")
        self.closed: dict[str, tuple[float, int]] = {}  # agent key -> (kept until, generation) of a closed answer
        # agent key -> {generation: successes not written yet}, and the configuration they are counted with
        self.successes: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.configs: dict[str, dict] = {}
        self.writing: asyncio.TimerHandle | None = None
        self.written: set[asyncio.Task] = set()

    async def run(self, work, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, _in_thread, work, *args)

    async def admit(self, key: str, name: str, stored_config, *, timeout_ms: int, left_ms: int | None, outside_slot):
        """(Ticket, None) to call, or (None, why not): the task's deadline passed while the breaker was
        open. While waiting, the task holds no call slot (`outside_slot`, an async context manager)."""
        if not settings.CIRCUIT_BREAKER_ENABLED:
            return None, None
        config = breaker.config_of(stored_config)
        if not config["enabled"]:
            return breaker.Ticket(key, None), None  # counted for the metrics only
        kept = self.closed.get(key)
        if kept is not None and kept[0] > time.monotonic():
            return breaker.Ticket(key, kept[1]), None
        lease = timeout_ms / 1000
        deadline = None if left_ms is None else time.time() + left_ms / 1000
        verdict = await self._ask(key, config, lease)
        if isinstance(verdict, breaker.Ticket):
            if verdict.trial is None and verdict.generation is not None:  # closed
                self.closed[key] = (time.monotonic() + ADMIT_KEEP_SECONDS, verdict.generation)
            return verdict, None
        async with outside_slot():
            while isinstance(verdict, breaker.Wait):
                now = time.time()
                if deadline is not None and now >= deadline:
                    return None, self.refusal(name, verdict)
                # Open: nothing changes before its timeout. Half-open: another bridge's trial may end any time.
                polled = verdict.until if verdict.state == breaker.OPEN else now + POLL_SECONDS
                until = min(verdict.until, polled, deadline or float("inf"))
                event = self.changed.setdefault(key, asyncio.Event())
                try:
                    async with asyncio.timeout(max(until - now, 0)):
                        await event.wait()
                except TimeoutError:
                    pass
                verdict = await self._ask(key, config, lease)
        return breaker.Ticket(verdict.key, verdict.generation, verdict.trial, waited=True), None

    async def _ask(self, key, config, lease):
        try:
            return await self.run(circuit_admit, key, config, time.time(), lease)
        except Exception:  # noqa: BLE001 - the store is away: call anyway
            self.warn("circuit breaker store unavailable; agents are called without it")
            return breaker.Ticket(key, None)

    @staticmethod
    def refusal(name: str, wait: breaker.Wait) -> str:
        if wait.state == breaker.OPEN:
            detail = f"open since {_when(wait.opened_at)}, half-open trial due at {_when(wait.until)}"
        else:
            detail = f"half-open (opened at {_when(wait.opened_at)}) with its trial calls still running"
        return (
            f"Circuit breaker of agent '{name}' is {detail}: the task's deadline passed while it waited "
            "for the agent to recover; not called"
        )

    async def record(self, ticket, ok: bool, error: str | None, stored_config) -> None:
        """Reports how an admitted call ended (None: the breakers are off)."""
        if ticket is None:
            return
        failed = breaker.is_failure(ok, error)
        config = breaker.config_of(stored_config)
        if failed is False and ticket.trial is None and ticket.generation is not None:
            self.successes[ticket.key][ticket.generation] += 1  # closed: written with the others soon
            self.configs[ticket.key] = config
            if self.writing is None:
                self.writing = asyncio.get_running_loop().call_later(SUCCESSES_EVERY_SECONDS, self._write_soon)
            return
        earlier = self.successes.pop(ticket.key, None)
        self.closed.pop(ticket.key, None)  # this outcome may change the state
        try:
            await self.run(circuit_record, ticket, config, failed, time.time(), error, earlier)
        except Exception:  # noqa: BLE001 - the outcome is lost, the call's result is not
            self.warn("circuit breaker store unavailable; call outcomes are not counted")
        self.wake(ticket.key)

    def _write_soon(self) -> None:
        self.writing = None
        task = asyncio.ensure_future(self.successes_write())
        self.written.add(task)
        task.add_done_callback(self.written.discard)

    async def successes_write(self) -> None:
        """Writes the successes counted so far (the bridge calls it on its way out too), after the writes
        already under way: on the way out, returning before them let the loop's end cut them off."""
        pending, self.successes = self.successes, defaultdict(lambda: defaultdict(int))
        current = asyncio.current_task()
        earlier = [task for task in self.written if task is not current]  # none waits for a later one
        if earlier:
            await asyncio.gather(*earlier, return_exceptions=True)
        for key, counts in pending.items():
            try:
                await self.run(circuit_successes, key, self.configs[key], dict(counts), time.time())
            except Exception:  # noqa: BLE001 - these counts are lost, the calls' results are not
                self.warn("circuit breaker store unavailable; call outcomes are not counted")

    async def release(self, ticket) -> None:
        """Gives a trial's place back: its task no longer needs the call (cancelled while waiting)."""
        if ticket is None or ticket.trial is None:
            return
        try:
            await self.run(circuit_release, ticket)
        except Exception:  # noqa: BLE001 - its lease gives it back later
            self.warn("circuit breaker store unavailable; a trial's place comes back at the end of its lease")
        self.wake(ticket.key)

    def warn(self, message: str) -> None:
        if time.monotonic() - self.warned_at >= WARN_EVERY_SECONDS:
            self.warned_at = time.monotonic()
            log.warning(message, exc_info=True)

    def wake(self, key: str) -> None:
        event = self.changed.pop(key, None)
        if event is not None:
            event.set()
