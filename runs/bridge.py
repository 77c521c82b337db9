"""The HTTP-Kafka bridge: agent tasks in, A2A calls out, agent results back.

Calls run concurrently on one asyncio loop (at most BRIDGE_MAX_IN_FLIGHT at once, and at most an
agent's `max_concurrency` to that agent: tasks beyond it wait without a slot); the Kafka consumer is
polled from a worker thread. A task's offset is committed only once its result has been published (or
its call abandoned because its step ended meanwhile: runs/abandon.py),
and never past a task still in flight (at-least-once: after a crash the executor may see a result
twice, and ignores the second). An agent that answers with an unfinished task (`working`) has it
followed without a call slot (runs/follow.py); an `agent_task_cancel` message cancels an agent's task.
"""

import asyncio
import contextlib
import functools
import itertools
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from kafka.errors import KafkaError, MessageSizeTooLargeError

from agents.a2a import AgentCall, CallResult, Message, call_agent, message_id_of
from agents.agent_http import AgentClient
from agents.breaker_calls import CircuitBreakers
from agents.card import auth_headers
from agents.choices import LIVE_STATUSES, AgentStatus
from agents.models import Agent
from agents.policy import retry_policy
from core import kafka, tracing
from core.db import connections_refresh, placeholders, the_row, threads_end, transient
from core.logs import log_context
from runs import messages
from runs.abandon import Abandon
from runs.choices import LogLevel, StepStatus
from runs.follow import Follow, Followers
from runs.gates import AgentGates, Gate
from runs.models import StepExecution
from runs.recent import RecentAnswers

log = logging.getLogger(__name__)
DB_TRIES = 10  # about 13 s of backoff in all


STEP_COLUMNS = {"step_status": "status", "step_task": "agent_task_id", "step_context": "agent_context_id"}
STEP_SELECT = "".join(
    f', (SELECT "{column}" FROM "runs_stepexecution" WHERE "correlation_id" = %s LIMIT 1) AS "{name}"'  # noqa: S608 - fixed names
    for name, column in STEP_COLUMNS.items()
)
LIVE_AGENT = f'"name" = %s AND "status" IN ({placeholders(LIVE_STATUSES)})'


def _step_status(correlation_id) -> str | None:
    return StepExecution.objects.filter(correlation_id=correlation_id).values_list("status", flat=True).first()


def time_left_ms(deadline) -> int | None:
    """Milliseconds until a task's deadline (None when it has none or it cannot be read)."""
    if not isinstance(deadline, str):
        return None
    try:
        when = datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int((when - datetime.now(UTC)).total_seconds() * 1000)


@dataclass
class Prepared:
    call: AgentCall | None = None
    error: str | None = None  # why the call cannot be made: published as a FAILURE result
    skip: str | None = None  # why the task is dropped without a result: its step no longer waits for one
    known: bool = False  # our executor dispatched it, so the call is logged on the run
    max_concurrency: int | None = None  # the agent's limit of calls at once in this process (None: no limit)
    agent_id: str | None = None  # the key of the agent's circuit breaker
    breaker: dict | None = None  # the agent's circuit_breaker_config as stored (None: the defaults)
    agent_task_id: str | None = None  # the agent's task of this try, as stored on the step
    agent_context_id: str | None = None


def task_prepare(task: dict) -> Prepared:
    """What to do with a task. Runs in a worker thread: it reads the database."""
    connections_refresh()
    correlation_id = task.get("correlation_id")
    name = task.get("agent_name") or ""
    # One round trip: the agent, and the step's status as our executor recorded it (if it knows the task).
    # The SQL is built once (as the ORM, 4 ms a task, from poll to call, in the bench).
    params = [str(correlation_id)] * len(STEP_COLUMNS) + [name, *LIVE_STATUSES]
    agent = the_row(Agent, LIVE_AGENT, params, extra=STEP_SELECT)
    step = agent.step_status if agent is not None else _step_status(correlation_id)
    known = step is not None
    if known and step != StepStatus.RUNNING:
        return Prepared(skip=f"step is {step}", known=known)  # cancelled or timed out: no call any more
    if agent is None:
        return Prepared(error=f"Agent '{name}' is not registered (or was deleted)", known=known)
    if agent.status != AgentStatus.ACTIVE:
        return Prepared(error=f"Agent '{name}' is {agent.status}", known=known)
    policy = retry_policy(agent.retry_config, task.get("retry"))
    timeout_ms = task.get("timeout_ms") or agent.timeout_ms
    left_ms = time_left_ms(task.get("deadline"))
    if left_ms is not None:
        if left_ms <= 0:
            return Prepared(
                error=f"The task was picked up after its deadline ({task['deadline']}); not called", known=known
            )
        timeout_ms = min(int(timeout_ms), left_ms)
    call = AgentCall(
        url=agent.url,
        headers=auth_headers(agent),
        timeout_ms=int(timeout_ms),
        max_retries=int(policy["max_retries"]),
        initial_delay_ms=int(policy["initial_delay_ms"]),
        max_delay_ms=int(policy["max_delay_ms"]),
        backoff_multiplier=float(policy["backoff_multiplier"]),
    )
    return Prepared(
        call=call,
        known=known,
        max_concurrency=agent.max_concurrency,
        agent_id=str(agent.pk),
        breaker=agent.circuit_breaker_config,
        agent_task_id=agent.step_task,
        agent_context_id=agent.step_context,
    )


def retrying(work, *args):
    """`work(*args)` in a worker thread, tried again while the database is briefly away: a cut
    connection must not fail a step whose agent was never asked, nor lose the log of a call."""
    for attempt in itertools.count(1):
        try:
            return work(*args)
        except DatabaseError as exc:
            if not transient(exc) or attempt >= DB_TRIES:
                raise
            log.warning("database error in the bridge (%s); try %d of %d", exc, attempt, DB_TRIES)
            close_old_connections()  # this thread's broken connection: the next try opens a new one
            time.sleep(min(0.1 * 2 ** (attempt - 1), 2))
    return None


def result_message(task: dict, result: CallResult) -> dict:
    return messages.agent_result(
        task,
        ok=result.ok,
        output=result.output,
        error=result.error,
        duration_ms=result.duration_ms,
        status="INPUT_REQUIRED" if result.needs_input else None,
        agent_task_id=result.agent_task_id,
        agent_context_id=result.agent_context_id,
    )


def answer_key(task: dict):
    """A task's identity for the dedupe of copies: a person's reply shares its try's correlation id but
    has its own task id."""
    correlation_id = task.get("correlation_id")
    return (correlation_id, task.get("task_id")) if correlation_id else None


def message_of(task: dict) -> Message:
    """The messageId of the try (or of the reply), and the agent's task and context for a reply."""
    message_id = message_id_of(task.get("run_id"), task.get("correlation_id"), task.get("task_id"))
    reply = task.get("reply") if isinstance(task.get("reply"), dict) else None
    if reply is None:
        return Message(message_id=message_id)
    return Message(
        message_id=message_id,
        reply={"text": reply.get("text"), "data": reply.get("data")},
        agent_task_id=task.get("agent_task_id"),
        agent_context_id=task.get("agent_context_id"),
    )


def follow_seconds(task: dict, prepared: Prepared) -> float:
    left = time_left_ms(task.get("deadline"))
    return (left if left is not None else prepared.call.timeout_ms) / 1000


def following_again(task: dict, prepared: Prepared) -> Follow | None:
    """The agent's task of this try, known from the task or its step (a bridge restarted while
    following it, or another bridge got the task): followed again, never a second call."""
    if prepared.call is None or isinstance(task.get("reply"), dict):
        return None
    agent_task_id = task.get("agent_task_id") or prepared.agent_task_id
    if not agent_task_id:
        return None
    return Follow(
        url=prepared.call.url,
        headers=prepared.call.headers,
        agent_task_id=str(agent_task_id),
        agent_context_id=task.get("agent_context_id") or prepared.agent_context_id,
        seconds=follow_seconds(task, prepared),
        state="working",
        resumed=True,
    )


def to_follow(task: dict, prepared: Prepared, result: CallResult) -> Follow:
    return Follow(
        url=prepared.call.url,
        headers=prepared.call.headers,
        agent_task_id=result.agent_task_id,
        agent_context_id=result.agent_context_id,
        seconds=follow_seconds(task, prepared),
        state=result.state or "submitted",
        protocol=result.protocol,
    )


def call_log(task: dict, result: CallResult, agent_url: str | None, at) -> dict:
    """The bridge's run log entry of a call, sent with its result: the executor writes it in the
    transaction that records the result (one write fewer per call here, and never one without the other)."""
    if result.needs_input:
        message, level = f"Agent '{task.get('agent_name')}' asks for input ({result.state})", LogLevel.INFO
    elif result.ok:
        message, level = f"Agent '{task.get('agent_name')}' answered in {result.duration_ms} ms", LogLevel.INFO
    else:
        message, level = f"Agent '{task.get('agent_name')}' call failed: {result.error}", LogLevel.ERROR
    data = {"task_id": task.get("task_id"), "attempts": result.attempts, "duration_ms": result.duration_ms}
    return {"message": message, "level": level, "data": {**data, "url": agent_url}, "timestamp": at.isoformat()}


def too_large(message: dict, exc: Exception) -> dict:
    """The FAILURE result sent instead of an answer Kafka does not take."""
    size = len(kafka.encode(message))
    error = (
        f"The agent's answer is too large to send over Kafka ({size} bytes; KAFKA_MAX_MESSAGE_BYTES is "
        f"{settings.KAFKA_MAX_MESSAGE_BYTES}): {type(exc).__name__}"
    )
    return {**message, "status": "FAILURE", "output_data": None, "error_message": error}


def traced(process):
    """`process(client, partition, offset, task, headers=None)`: the task is handled under a CONSUMER span
    continuing the trace in its Kafka `headers`, with its run and step on every log line."""

    @functools.wraps(process)
    async def wrapper(self, client, partition, offset: int, task: dict, headers=None) -> None:
        attributes = {"messaging.system": "kafka", "messaging.source.name": settings.KAFKA_TASKS_TOPIC}
        attributes.update(tracing.attributes_of(task))
        with tracing.span("bridge task", kind=tracing.SpanKind.CONSUMER, attributes=attributes, parent=headers):
            with log_context(run_id=task.get("run_id"), step_id=task.get("step_id")):
                await process(self, client, partition, offset, task)

    return wrapper


class Bridge:
    def __init__(self):
        self.stopping = False
        self.tracker = kafka.OffsetTracker()
        self.consumer = None
        self.poller = ThreadPoolExecutor(1, thread_name_prefix="bridge-kafka")
        self.db = ThreadPoolExecutor(8, thread_name_prefix="bridge-db")
        self.semaphore = asyncio.Semaphore(settings.BRIDGE_MAX_IN_FLIGHT)
        self.gates = AgentGates()  # agents with a max_concurrency
        self.breakers = CircuitBreakers(self.db)  # agents' circuit breakers (state shared by every bridge)
        self.abandon = Abandon(self.db, retrying)  # calls whose step ended meanwhile are given up
        self.followers = Followers(self.db, retrying, self.abandon)  # unfinished agent tasks (runs/follow.py)
        self.waiting = 0  # tasks waiting for such an agent, holding no slot (read by poll())
        self.calling: set = set()  # correlation ids of the tasks being handled
        self.recent = RecentAnswers(settings.BRIDGE_RECENT_ANSWERS_BYTES)
        self.loss = kafka.LossWatch([settings.KAFKA_TASKS_TOPIC, settings.KAFKA_RESULTS_TOPIC])

    def stop(self, *args) -> None:
        self.stopping = True

    @traced
    async def process(self, client: AgentClient, partition, offset: int, task: dict) -> None:
        loop = asyncio.get_running_loop()
        published: list = []  # set by finish(): whether this task's result went out
        name = str(task.get("agent_name") or "")
        entered: Gate | None = None  # the agent's gate, once this task holds one of its turns
        key = answer_key(task)
        calling = False  # this task holds its key in self.calling
        following = False  # this task holds a place among the followers
        try:
            if task.get("message_type") == "agent_task_cancel":
                await self.followers.cancel_message(client, task)
                return
            if await self.answered_before(task, published):
                return
            if key:
                self.calling.add(key)
                calling = True
            follow, turn = None, False
            async with self.semaphore:
                prepared = await loop.run_in_executor(self.db, retrying, task_prepare, task)
                gate = self.gates.gate(name, prepared.max_concurrency) if prepared.call else None
                if gate is None or gate.try_enter():
                    entered, turn = gate, True
                    follow = await self.handle(client, task, prepared, published)
                    if follow is None:
                        return
                    await self.followers.enter()  # a full pool keeps the slot: the consumer slows down
                    following = True
            if not turn:
                # The agent is at its max_concurrency: wait for a turn without holding a slot, so that
                # one slow agent never takes every slot from the others.
                if not await self.wait_turn(gate, task):
                    error = (
                        f"The task was picked up after its deadline ({task.get('deadline')}); not called: agent "
                        f"'{name}' was at its max_concurrency ({prepared.max_concurrency}) until then"
                    )
                    await self.handle(client, task, Prepared(error=error, known=prepared.known), published)
                    return
                entered = gate
                async with self.semaphore:
                    # Read again: the step may have been cancelled, or its deadline passed, while it waited.
                    prepared = await loop.run_in_executor(self.db, retrying, task_prepare, task)
                    follow = await self.handle(client, task, prepared, published)
                    if follow is None:
                        return
                    await self.followers.enter()
                    following = True
            # The agent's task is unfinished: followed without a call slot or a turn of the agent's
            # max_concurrency (runs/follow.py); the offset stays uncommitted until the result is out.
            if entered is not None:
                self.gates.leave(name, entered)
                entered = None
            result = await self.followers.follow(client, task, follow)
            if result is not None:
                await self.finish(task, result, prepared, published, at=timezone.now())
        except Exception as exc:  # noqa: BLE001 - whatever happened, the slot and the offset are released
            log.exception("task %s at offset %s failed in the bridge", task.get("task_id"), offset)
            if not published:
                # The step learns why at once instead of waiting for its deadline.
                error = f"The bridge could not handle the task: {type(exc).__name__}: {exc}"[:2000]
                failure = CallResult(ok=False, output=None, error=error, duration_ms=0, attempts=0)
                try:
                    await self.publish(result_message(task, failure))
                except Exception:  # noqa: BLE001 - stopping with Kafka away: the step's deadline covers it
                    log.exception("could not publish the failure of task %s", task.get("task_id"))
        finally:
            if following:
                self.followers.leave()
            if calling:
                self.calling.discard(key)
            if entered is not None:
                self.gates.leave(name, entered)
            self.tracker.done(partition, offset)

    async def answered_before(self, task: dict, published: list) -> bool:
        """True for a task this bridge is calling already, or answered lately: a copy the executor sent
        again after the broker lost its messages. The agent is not called twice; a kept answer goes out
        again, since it may be the message the broker lost."""
        key = answer_key(task)
        if key in self.calling:
            log.info("task %s is being called already; this copy is dropped", task.get("task_id"))
            return True
        answer = self.recent.get(key)
        if answer is None:
            return False
        log.info("task %s was answered already; the answer is sent again", task.get("task_id"))
        await self.publish({k: v for k, v in answer.items() if k != messages.CALL_LOG})  # the call was logged once
        published.append(True)
        return True

    async def handle(self, client: AgentClient, task: dict, prepared: Prepared, published: list) -> Follow | None:
        """Drops the task, publishes why it cannot be called, or calls the agent and publishes its answer;
        or returns the agent's unfinished task, to be followed (then nothing is published yet)."""
        ticket = None
        resume = following_again(task, prepared)
        if resume is not None:  # the agent has this try's task already: followed, not called again
            return resume
        if prepared.call is not None:  # may wait, holding no slot, while the agent's circuit breaker is open
            prepared, ticket = await self.circuit_turn(task, prepared)
        if prepared.skip:
            log.info("task %s skipped: %s", task.get("task_id"), prepared.skip)
            return
        answered_at = None  # when the agent's answer came: the call log's timestamp
        if prepared.call is None:
            result = CallResult(ok=False, output=None, error=prepared.error, duration_ms=0, attempts=0)
        else:
            attributes = {**tracing.attributes_of(task), "url.full": prepared.call.url}
            with tracing.span(
                f"agent call {task.get('agent_name')}", kind=tracing.SpanKind.CLIENT, attributes=attributes
            ):
                result = await self.abandon.call(
                    task,
                    call_agent(
                        client,
                        prepared.call,
                        task.get("input_data") or {},
                        correlation_id=str(task.get("correlation_id")),
                        task_id=str(task.get("task_id")),
                        message=message_of(task),
                    ),
                )
                if result is None:  # abandoned: its step no longer waits for a result (runs/abandon.py)
                    await self.breakers.release(ticket)
                    return
                answered_at = timezone.now()
                tracing.outcome(result.ok, result.error)
            await self.breakers.record(ticket, result.ok, result.error, prepared.breaker)
            if result.open and result.agent_task_id:
                return to_follow(task, prepared, result)
        await self.finish(task, result, prepared, published, at=answered_at)
        return None

    async def circuit_turn(self, task: dict, prepared: Prepared) -> tuple[Prepared, object]:
        """The agent's circuit breaker lets the call through (a ticket), or the task waits for its half-open
        trial, is read again after (cancelled meanwhile?), and fails if its deadline comes first."""
        ticket, refused = await self.breakers.admit(
            prepared.agent_id,
            str(task.get("agent_name")),
            prepared.breaker,
            timeout_ms=prepared.call.timeout_ms,
            left_ms=time_left_ms(task.get("deadline")),
            outside_slot=self.slot_released,
        )
        if refused:
            return Prepared(error=refused, known=prepared.known), None
        if ticket is not None and ticket.waited:
            again = await asyncio.get_running_loop().run_in_executor(self.db, retrying, task_prepare, task)
            if again.call is None:
                await self.breakers.release(ticket)
                return again, None
            prepared = again
        return prepared, ticket

    @contextlib.asynccontextmanager
    async def slot_released(self):
        """Gives the task's call slot up while it waits for something else (counted for poll())."""
        self.semaphore.release()
        self.waiting += 1
        try:
            yield
        finally:
            self.waiting -= 1
            await self.semaphore.acquire()

    async def wait_turn(self, gate: Gate, task: dict) -> bool:
        """Waits for a turn at the agent's gate; False when the task's deadline comes first."""
        left_ms = time_left_ms(task.get("deadline"))
        self.waiting += 1
        try:
            async with asyncio.timeout(None if left_ms is None else max(left_ms, 0) / 1000):
                await gate.enter()
            return True
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1

    async def finish(self, task: dict, result: CallResult, prepared: Prepared, published: list, at=None) -> None:
        message = result_message(task, result)
        if prepared.known:
            # Stamped when the answer came (`at`), so the run's log has it before what the executor
            # does with the result.
            url = prepared.call.url if prepared.call else None
            message[messages.CALL_LOG] = call_log(task, result, url, at or timezone.now())
        await self.publish(message)
        published.append(True)
        self.recent.keep(answer_key(task), message)

    async def publish(self, message: dict) -> None:
        """Sends a result, retrying until Kafka takes it: the call was made, its answer must not be lost."""
        for attempt in itertools.count():
            try:
                # With tracing on, the task's span goes along: the executor's handling continues it.
                extra = {"headers": tracing.kafka_headers()} if tracing.enabled() else {}
                future = kafka.producer().send(
                    settings.KAFKA_RESULTS_TOPIC, key=str(message["run_id"]), value=message, **extra
                )
                await kafka.acknowledged(future, settings.KAFKA_SEND_TIMEOUT_SECONDS)
                return
            except MessageSizeTooLargeError as exc:
                if message.get("status") != "SUCCESS":
                    raise  # even the failure does not fit: the step's deadline ends it
                message = too_large(message, exc)  # the step learns why, and the slot is freed
            except Exception as exc:  # noqa: BLE001 - broker down or restarting
                if self.stopping and attempt >= 2:
                    raise
                log.warning("could not publish the result of %s (%s); retrying", message.get("task_id"), exc)
                kafka.producer_reset()
                await asyncio.sleep(min(2**attempt, 10))

    def poll(self, *, final: bool = False) -> dict:
        """The next tasks, as many as there is room for; commits what is done. `final`: the last call,
        which waits for its commit (the consumer closes next)."""
        assigned = self.consumer.assignment()
        # Tasks waiting for an agent at its max_concurrency hold no slot: up to BRIDGE_MAX_WAITING of them
        # are held on top of the slots, so tasks for the other agents keep coming in.
        # Followed tasks hold no slot either: up to BRIDGE_MAX_FOLLOWING more.
        held = (
            settings.BRIDGE_MAX_IN_FLIGHT
            + min(self.waiting, settings.BRIDGE_MAX_WAITING)
            + min(self.followers.count, settings.BRIDGE_MAX_FOLLOWING)
        )
        room = held - self.tracker.count()
        if room <= 0:
            self.consumer.pause(*assigned)
        else:
            self.consumer.resume(*self.consumer.paused())
        batch = max(1, min(room, settings.BRIDGE_MAX_IN_FLIGHT))  # never more than there is room for
        records = self.consumer.poll(timeout_ms=200, max_records=batch)
        if self.loss.due():
            self.loss.check(self.consumer)  # rewinds what the broker lost; the executor sends it again
        self.tracker.forget(self.consumer.assignment())
        offsets = self.tracker.committable()
        if offsets and final:
            try:
                self.consumer.commit(offsets)
                self.tracker.mark_committed(offsets)
            except KafkaError as exc:  # a rebalance or broker restart: the new owner redelivers
                log.warning("offset commit failed (%s); tasks may be delivered again", exc)
        elif offsets:
            # Asynchronous: a commit waited for held the tasks just fetched back from their calls by a
            # round trip to the broker. Marked at once (not sent again by the next poll); one that
            # fails is unmarked by its callback and sent again.
            self.tracker.mark_committed(offsets)
            self.consumer.commit_async(offsets, callback=self.commit_done)
        return records

    def commit_done(self, offsets, response) -> None:
        if isinstance(response, Exception):  # a rebalance or broker restart: the new owner redelivers
            log.warning("offset commit failed (%s); tasks may be delivered again", response)
            self.tracker.commit_failed(offsets)

    async def main(self, *, once: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.consumer = await loop.run_in_executor(
            self.poller,
            lambda: kafka.consumer_connect(
                settings.KAFKA_TASKS_TOPIC,
                also_create=[settings.KAFKA_RESULTS_TOPIC],
                group_id=settings.KAFKA_BRIDGE_GROUP,
                stopping=lambda: self.stopping,
            ),
        )
        if self.consumer is None:
            return
        # Followers share the client (a subscription holds its connection for as long as the task runs).
        client = AgentClient(max_connections=settings.BRIDGE_MAX_IN_FLIGHT + settings.BRIDGE_MAX_FOLLOWING)
        tasks: set[asyncio.Task] = set()
        log.info(
            "bridge started (group %s, %d calls in flight at most)",
            settings.KAFKA_BRIDGE_GROUP,
            settings.BRIDGE_MAX_IN_FLIGHT,
        )
        async with client:
            while not self.stopping:
                try:
                    records = await loop.run_in_executor(self.poller, self.poll)
                except Exception as exc:  # noqa: BLE001 - Kafka away, or kafka-python tripping over a broker that restarted
                    log.warning("Kafka error (%s: %s); retrying in a second", type(exc).__name__, exc)
                    await asyncio.sleep(1)
                    continue
                for partition, batch in records.items():
                    for record in batch:
                        self.tracker.add(partition, record.offset)
                        try:
                            task = kafka.decode(record.value)
                            if not task.get("run_id") or not task.get("correlation_id"):
                                raise ValueError("no run_id or correlation_id")
                        except ValueError as exc:
                            log.warning("malformed task at %s@%s skipped: %s", partition.topic, record.offset, exc)
                            self.tracker.done(partition, record.offset)
                            continue
                        job = asyncio.create_task(self.process(client, partition, record.offset, task, record.headers))
                        tasks.add(job)
                        job.add_done_callback(tasks.discard)
                if once and not records and not tasks and self.consumer.assignment():
                    break
            if tasks:
                await asyncio.wait(tasks, timeout=30)  # let calls in flight finish and publish
            await self.breakers.successes_write()  # the calls' outcomes not written yet
            await loop.run_in_executor(self.poller, functools.partial(self.poll, final=True))  # last commit
        self.consumer.close()
        threads_end(self.db)  # its threads' database connections closed, not left to garbage collection
        log.info("bridge stopped")

    def run(self, *, once: bool = False) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        started = time.monotonic()
        tracing.init("bridge")
        try:
            asyncio.run(self.main(once=once))
        finally:
            tracing.shutdown()
        log.debug("bridge ran for %.1f s", time.monotonic() - started)
