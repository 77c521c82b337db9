"""Per-agent concurrency limits of the bridge (agent field `max_concurrency`), one gate per agent name.

A gate lets at most `limit` calls in at once and queues the rest in arrival order. Its limit is the one
the bridge last read from the database for that agent (each task reads its agent), so an edit applies
from the next task on; a lowered limit lets no one new in until enough calls have left. The limit is
per bridge process: N bridges allow N x `max_concurrency` calls. One asyncio loop only, no locks.
"""

import asyncio
from collections import deque


class Gate:
    def __init__(self, limit: int):
        self.limit = limit
        self.inside = 0
        self.queue: deque[asyncio.Future] = deque()

    def try_enter(self) -> bool:
        """Enters at once if there is room and nobody waits ahead."""
        if self.inside < self.limit and not self.queue:
            self.inside += 1
            return True
        return False

    async def enter(self) -> None:
        if self.try_enter():
            return
        turn = asyncio.get_running_loop().create_future()
        self.queue.append(turn)
        try:
            await turn  # leave() counts us in before it wakes us
        except BaseException:  # cancelled, or timed out by the caller's deadline
            if turn.done() and not turn.cancelled():
                self.leave()  # woken and cancelled at once: pass the turn on
            elif turn in self.queue:  # wake() may have dropped it already
                self.queue.remove(turn)
            raise

    def leave(self) -> None:
        self.inside -= 1
        self.wake()

    def wake(self) -> None:
        while self.queue and self.inside < self.limit:
            turn = self.queue.popleft()
            if not turn.done():
                self.inside += 1
                turn.set_result(None)

    @property
    def idle(self) -> bool:
        return self.inside == 0 and not self.queue


class AgentGates:
    def __init__(self):
        self.gates: dict[str, Gate] = {}

    def gate(self, name: str, limit: int | None) -> Gate | None:
        """The gate of agent `name` with its limit brought up to date, or None when it has no limit."""
        gate = self.gates.get(name)
        if gate is not None:
            # No limit any more: whoever waits goes in now.
            gate.limit = limit or float("inf")
            gate.wake()
        elif limit:
            gate = self.gates[name] = Gate(limit)
        return gate if limit else None

    def leave(self, name: str, gate: Gate) -> None:
        gate.leave()
        if gate.idle and self.gates.get(name) is gate:
            del self.gates[name]  # only agents with calls in flight or waiting keep a gate
