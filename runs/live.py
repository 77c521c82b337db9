"""Live events: one poller per web process reads new rows of the events table and hands them to every
open stream (`GET /runs/{id}/events`, `GET /events`; the views are in runs/api/stream.py).

Why polling (one query per process every SSE_POLL_INTERVAL_MS, shared by all streams) and not
LISTEN/NOTIFY or Redis pub/sub: it works the same on SQLite (the embedded default) and PostgreSQL, needs
no connection held open per process and no publish step that a crash between commit and publish could
lose, and its cost does not grow with the number of streams (an index range scan on the primary key
that usually finds nothing). With the default 50 ms interval an event reaches a stream within about
50 ms of its commit plus the query and the fan-out (bench/sse.py measures it with 1,000 idle streams).

Ids are taken at insert but rows become visible at commit, so two transactions can commit out of id
order. The poller's cursor therefore never moves past a missing id until it turns up or
SSE_GAP_WAIT_MS has passed (a rolled-back insert leaves a hole that never fills). Everything at or
below the cursor is settled: a stream replays from the table up to the cursor it saw when it
subscribed and takes what is above it from the poller, so it misses nothing and sees nothing twice.

Idle streams hold no thread and no database connection: each query runs in a worker thread of the
event loop and closes its connection afterwards (`db_call`).
"""

import asyncio
import time
import weakref
from collections.abc import Callable

from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.db import connections

from runs.models import Event

BATCH = 500
TERMINAL_RUN_EVENTS = {"run.completed", "run.failed", "run.cancelled"}
FIELDS = ("id", "type", "run_id", "workflow_id", "data", "created_at")


def connections_release() -> None:
    """Closes this thread's database connections (not one inside a transaction, e.g. a test's)."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def _closing(fn):
    def call(*args):
        try:
            return fn(*args)
        finally:
            connections_release()  # nothing kept between calls: an idle stream holds no connection

    return call


async def db_call(fn: Callable, *args):
    """Runs `fn` in a worker thread (not the request's) and closes its database connection afterwards."""
    return await sync_to_async(_closing(fn), thread_sensitive=False)(*args)


def events_after(after: int, upto: int | None = None, run_id=None, workflow_id=None, types=None) -> list[Event]:
    rows = Event.objects.filter(id__gt=after).only(*FIELDS).order_by("id")
    if upto is not None:
        rows = rows.filter(id__lte=upto)
    if run_id is not None:
        rows = rows.filter(run_id=run_id)
    if workflow_id is not None:
        rows = rows.filter(workflow_id=workflow_id)
    if types:
        rows = rows.filter(type__in=types)
    return list(rows[:BATCH])


def event_last_id() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def request_thread_release() -> None:
    """Ends the thread Django ran this request's sync code in (middleware, the DRF view).

    Under ASGI each request has a thread of its own for that code (asgiref's per-context executor),
    until the response is over: for a stream, as long as the client stays. The view is done with it
    once the stream starts, so it is let go now (back to the handler's kept threads, or ended); asgiref
    makes another, for a moment, for the response's close at the end.
    """
    context = SyncToAsync.thread_sensitive_context.get(None)
    if context is not None:
        executor = SyncToAsync.context_to_thread_executor.pop(context, None)
        if executor is not None:
            give_back = getattr(executor, "give_back", None)  # a thread the handler keeps (config/asgi_handler.py)
            give_back() if give_back else executor.shutdown(wait=False)


class Subscriber:
    """One open stream: a queue of events that pass its filter."""

    def __init__(self, run_id=None, workflow_id=None, types=None):
        self.run_id, self.workflow_id, self.types = run_id, workflow_id, set(types or ())
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    def wants(self, event: Event) -> bool:
        return (
            (self.run_id is None or event.run_id == self.run_id)
            and (self.workflow_id is None or event.workflow_id == self.workflow_id)
            and (not self.types or event.type in self.types)
        )


class Poller:
    """The process's one reader of new events (per event loop: uvicorn runs one loop per worker)."""

    def __init__(self):
        self.subscribers: set[Subscriber] = set()
        self.cursor: int | None = None
        self.gap_since: float | None = None
        self.task: asyncio.Task | None = None
        self.woken = asyncio.Event()

    async def subscribe(self, subscriber: Subscriber) -> int:
        """Registers `subscriber`; answers the cursor: the stream replays up to it, the poller sends the rest."""
        if self.cursor is None:
            self.cursor = await db_call(event_last_id)
        self.subscribers.add(subscriber)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())
        self.woken.set()
        return self.cursor

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    async def _run(self):
        interval = settings.SSE_POLL_INTERVAL_MS / 1000
        while True:
            if not self.subscribers:
                # Nobody listens: no queries. The cursor is forgotten, so the next stream starts from now.
                self.woken.clear()
                self.cursor = None
                await self.woken.wait()
                continue
            started = time.monotonic()
            try:
                full = await self.poll_once()
            except Exception:  # noqa: BLE001 - a database hiccup must not end every stream; try again
                full = False
            if not full:
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def poll_once(self) -> bool:
        """Reads what is new, hands the settled part out; True when there may be more to read at once."""
        cursor = self.cursor
        if cursor is None:
            return False
        events = await db_call(events_after, cursor)
        settled = []
        for event in events:
            if event.id != cursor + 1:
                if self.gap_since is None:
                    self.gap_since = time.monotonic()
                if time.monotonic() - self.gap_since < settings.SSE_GAP_WAIT_MS / 1000:
                    break  # an id in between may still commit: wait for it
            self.gap_since = None
            settled.append(event)
            cursor = event.id
        if self.cursor is None:
            return False  # every stream left meanwhile
        self.cursor = cursor
        for event in settled:
            for subscriber in list(self.subscribers):
                if subscriber.wants(event):
                    subscriber.queue.put_nowait(event)
        return len(events) == BATCH and len(settled) == len(events)


_pollers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def poller() -> Poller:
    """The poller of the running event loop (tests and servers may run more than one loop per process)."""
    loop = asyncio.get_running_loop()
    if loop not in _pollers:
        _pollers[loop] = Poller()
    return _pollers[loop]
