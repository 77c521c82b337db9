"""The executor process: consumes execution / cancellation requests and agent results, and decides.

Each message is handled under its run's row lock, in a transaction shared with the other messages of
its group (up to EXECUTOR_GROUP_MAX of one poll; a group that fails is redone one message per
transaction); the messages it produces go through the outbox and are sent right after the commit,
and the Kafka offsets are committed only after that. A crash anywhere means redelivery, and every
handler is idempotent.
"""

import contextlib
import logging
import signal
import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from core import kafka, tracing
from core.db import connections_refresh, storable, transient
from core.logs import log_context, log_note
from core.outbox import outbox_relay
from runs import messages
from runs.choices import (
    ACTIVE_RUN,
    ACTIVE_STEP,
    CANCELLABLE_RUN,
    RECORDING_RUN,
    LogLevel,
    LogSource,
    RunStatus,
    StepStatus,
)
from runs.decider import Decider
from runs.metrics import counters_batched
from runs.models import StepExecution
from runs.resend import inflight_resend
from runs.services import run_log, run_transition, steps_cancel
from runs.work import locked_run, locked_run_and_step, unit_of_work

log = logging.getLogger(__name__)
SOURCE = LogSource.EXECUTOR
OVERDUE_FAILURES = "executor:overdue-failures:"
OVERDUE_MAX_FAILURES = 3


@contextlib.contextmanager
def handling(topic: str, message: dict, headers):
    """While a message is handled: a CONSUMER span continuing its producer's trace, and its run (and
    step) on every log line."""
    attributes = {"messaging.system": "kafka", "messaging.source.name": topic, **tracing.attributes_of(message)}
    with tracing.span(f"executor {topic}", kind=tracing.SpanKind.CONSUMER, attributes=attributes, parent=headers):
        with log_context(run_id=message.get("run_id"), step_id=message.get("step_id")):
            yield


def execution_request_handle(message: dict) -> None:
    run = locked_run(message.get("run_id"), large=True)
    if run is None:
        log.warning("execution request for unknown run %s ignored", message.get("run_id"))
        return
    attempt = message.get("attempt") or run.attempt
    if attempt != run.attempt or run.status not in ACTIVE_RUN:
        log.info(
            "stale execution request for run %s (attempt %s, run is %s #%s)", run.id, attempt, run.status, run.attempt
        )
        return
    if run.status == RunStatus.PENDING:
        run_transition(run, RunStatus.RUNNING, source=SOURCE)
    # Also the recovery path: a RUNNING run is looked at again (deadlines, anything not dispatched).
    decider = Decider(run)
    decider.overdue_handle(timezone.now())
    decider.resume()


def cancellation_request_handle(message: dict) -> None:
    run = locked_run(message.get("run_id"))
    if run is None or run.status not in CANCELLABLE_RUN:
        return  # the API cancels in its own transaction; this request only matters to older producers
    attempt = message.get("attempt")
    if attempt is not None and attempt != run.attempt:
        # Cancelled, then retried at once: the old request must not cancel the new attempt.
        log.info("stale cancellation request for run %s (attempt %s, run is #%s)", run.id, attempt, run.attempt)
        return
    run.cancelled_by = str(message.get("cancelled_by") or "")[:150]
    steps_cancel(run, reason="Run cancelled")
    run_transition(run, RunStatus.CANCELLED, source=SOURCE, detail=str(message.get("reason") or ""))


def agent_result_handle(message: dict) -> None:
    correlation_id = message.get("correlation_id")
    # The run id in the message saves a lookup; the correlation id decides which step it is.
    # The rows it runs in (a loop iteration and its loop) are read when the decision needs them: a
    # select_related here cost 2.6 ms of CPU per result, mostly for steps that are in no block.
    run, execution = locked_run_and_step(message.get("run_id"), str(correlation_id)) if correlation_id else (None, None)
    if execution is None:
        log.warning(
            "agent result with unknown correlation id %r (run %r) ignored", correlation_id, message.get("run_id")
        )
        return
    tracing.annotate({"step.id": execution.step_id, "agent.name": execution.agent_name})
    log_note(step_id=execution.step_id)
    call_log_write(run, execution, message.get(messages.CALL_LOG))
    # A paused run records its steps' results too; the Decider holds what would follow (runs/pause.py).
    if execution.status != StepStatus.RUNNING or run.status not in RECORDING_RUN:
        run_log(
            run,
            f"Result for step '{execution.step_id}' ignored: the step is {execution.status}, the run {run.status}",
            source=SOURCE,
            level=LogLevel.WARNING,
            step_id=execution.step_id,
            data={k: message.get(k) for k in ("status", "output_data", "error_message", "task_id")},
        )
        return
    Decider(run).result_record(execution, message)


def call_log_write(run, execution: StepExecution, entry) -> None:
    """The bridge's log entry of the call, which came with its result (runs/bridge.py call_log)."""
    if not isinstance(entry, dict):
        return  # an older bridge logged the call itself
    try:
        at = datetime.fromisoformat(str(entry.get("timestamp")))
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
    except ValueError:
        at = None
    level = entry.get("level") if entry.get("level") in LogLevel.values else LogLevel.INFO
    data = entry.get("data") if isinstance(entry.get("data"), dict) else {}
    message = storable(str(entry.get("message") or "Agent call"))
    run_log(run, message, source=LogSource.BRIDGE, level=level, step_id=execution.step_id, data=storable(data), at=at)


def overdue_handle(sent: list, limit: int = 100) -> int:
    """Steps past their deadline and retries that are due, across all runs. Returns how many runs were looked at."""
    now = timezone.now()
    run_ids = list(
        StepExecution.objects.filter(status__in=ACTIVE_STEP, due_at__lte=now)
        # Steps in flight of a paused run still time out; its retries and held steps wait for resume.
        .exclude(status=StepStatus.PENDING, run__status=RunStatus.PAUSED)
        .values_list("run_id", flat=True)
        .distinct()[:limit]
    )
    for run_id in run_ids:
        try:
            with unit_of_work(sent):
                run = locked_run(run_id)
                if run is not None and run.status in RECORDING_RUN:
                    Decider(run).overdue_handle(now)
            cache.delete(f"{OVERDUE_FAILURES}{run_id}")
        except Exception as exc:  # noqa: BLE001 - one run must not stop the pass for the others
            if isinstance(exc, DatabaseError) and transient(exc):
                raise  # the database is away: the next tick tries every run again
            log.exception("run %s could not be handled in the deadline pass", run_id)
            run_give_up(run_id, exc, sent)
    return len(run_ids)


def run_give_up(run_id, exc: Exception, sent: list) -> None:
    """Counts a run's failed passes; at OVERDUE_MAX_FAILURES it ends FAILED with the error, so it
    neither stays RUNNING nor comes back to every pass."""
    key = f"{OVERDUE_FAILURES}{run_id}"
    failures = (cache.get(key) or 0) + 1
    cache.set(key, failures, timeout=3600)
    if failures < OVERDUE_MAX_FAILURES:
        return
    with unit_of_work(sent):
        run = locked_run(run_id)
        if run is not None and run.status == RunStatus.RUNNING:
            steps_cancel(run, reason="Run failed")
            error = f"The executor could not handle this run: {type(exc).__name__}: {exc}"
            run_transition(run, RunStatus.FAILED, source=SOURCE, error=storable(error)[:2000])
    cache.delete(key)


def poisoned(topic: str, message: dict, exc: DatabaseError) -> list:
    """A message the database refuses for good. An agent result becomes a failure of its step that
    names the reason (so the run goes on and ends); anything else is skipped. Returns what to send."""
    reason = storable(f"{type(exc).__name__}: {exc}")[:1000]
    if topic != settings.KAFKA_RESULTS_TOPIC:
        log.error("message on %s skipped: the database refuses it (%s)", topic, reason)
        return []
    failure = {
        **message,
        "status": "FAILURE",
        "output_data": None,
        "error_message": f"The agent's result could not be stored: {reason}",
        "duration_ms": None,
    }
    sent: list = []
    try:
        with unit_of_work(sent):
            agent_result_handle(failure)
    except DatabaseError:
        log.exception("result for %s skipped: even its failure could not be stored", message.get("correlation_id"))
        return []
    return sent


def _commit_done(offsets, response) -> None:
    if isinstance(response, Exception):
        # A rebalance or broker restart: the partition's next owner gets these again (idempotent).
        log.warning("offset commit failed (%s); the messages may be delivered again", response)


class Executor:
    def __init__(self):
        self.handlers = {
            settings.KAFKA_EXECUTION_TOPIC: execution_request_handle,
            settings.KAFKA_CANCELLATION_TOPIC: cancellation_request_handle,
            settings.KAFKA_RESULTS_TOPIC: agent_result_handle,
        }
        self.stopping = False
        self.consumer = None
        self.last_tick = 0.0
        self.resend_due = False
        self.resend_round = 0  # 0: at the loss; then one per KAFKA_LOSS_RESEND_AGAIN_SECONDS
        self.resend_again: list[float] = []  # when to send again, for the runs still in flight
        self.loss = kafka.LossWatch([*self.handlers, settings.KAFKA_TASKS_TOPIC])
        self.last_offsets: dict = {}
        self.transient_failures: dict = {}

    def stop(self, *args) -> None:
        self.stopping = True

    def handle(self, topic: str, raw: bytes, headers=None) -> list:
        """One message in one transaction; returns the outbox rows to send after commit. `headers`:
        the Kafka message's, whose trace context the handling continues (and the rows it writes carry on)."""
        sent: list = []
        try:
            with unit_of_work(sent):
                self.message_handle(topic, raw, headers)
        except DatabaseError as exc:
            if transient(exc):
                raise  # poll_once tries again, a bounded number of times
            return poisoned(topic, kafka.decode(raw), exc)
        return sent

    def message_handle(self, topic: str, raw: bytes, headers) -> None:
        """One message, inside the caller's transaction."""
        try:
            message = kafka.decode(raw)
        except ValueError as exc:
            log.warning("malformed message on %s skipped: %s", topic, exc)
            return
        with handling(topic, message, headers):
            self.handlers[topic](message)

    def tick(self) -> None:
        self.last_tick = time.monotonic()
        sent: list = []
        overdue_handle(sent)
        outbox_relay(sent)

    def loss_check(self) -> None:
        """When the broker lost its messages, the work in flight is sent again at once, rather than
        waiting for step deadlines and run leases."""
        try:
            now = time.monotonic()
            if self.loss.check(self.consumer):
                self.resend_due, self.resend_round = True, 0
                self.resend_again = [now + seconds for seconds in settings.KAFKA_LOSS_RESEND_AGAIN_SECONDS]
            elif not self.resend_due and self.resend_again and now >= self.resend_again[0]:
                # Again, later: what was written just as the broker came back may be lost as well.
                self.resend_again.pop(0)
                self.resend_due, self.resend_round = True, self.resend_round + 1
            if self.resend_due:
                inflight_resend(self.resend_round)
                self.resend_due = False  # kept until it went through: the database may be away too
        except Exception:  # noqa: BLE001 - broker or database trouble: the next check tries again
            log.exception("checking the broker for lost messages failed")

    def poll_once(self, timeout_ms: int = 1000) -> int:
        batches = self.consumer.poll(timeout_ms=timeout_ms, max_records=200)
        with counters_batched():  # the engine metrics of the whole batch in one pass
            return self.batch_handle(batches)

    def batch_handle(self, batches: dict) -> int:
        """A poll's messages, in groups of up to EXECUTOR_GROUP_MAX per transaction (one commit, and one
        round trip for all their logs, events and outbox rows); a group that fails is rolled back and
        its messages handled one by one, each in its own transaction, as without groups."""
        # A batch must not outlast the poll interval, or the group drops this executor and hands its
        # partitions (and this batch) to another: measured under load, 200 results took longer than
        # 3 s and the executor left the group over and over. What is left is fetched again next poll.
        deadline = time.monotonic() + settings.KAFKA_MAX_POLL_INTERVAL_MS / 2000
        queue = [(partition, record) for partition, records in batches.items() for record in records]
        handled, to_send, offsets, stopped = 0, [], {}, set()
        while True:
            queue = [item for item in queue if item[0] not in stopped]
            if not queue or time.monotonic() > deadline:
                break
            group, queue = queue[: settings.EXECUTOR_GROUP_MAX], queue[settings.EXECUTOR_GROUP_MAX :]
            grouped = self.group_handle(group, deadline) if len(group) > 1 else None
            if grouped is not None:
                done, rows = grouped
                finished, queue = group[:done], group[done:] + queue
                to_send.extend(rows)
            else:
                finished = []
                for n, (partition, record) in enumerate(group):
                    if partition in stopped:
                        continue
                    if time.monotonic() > deadline:
                        queue = group[n:] + queue
                        break
                    rows = self.record_handle(partition, record)
                    if rows is None:
                        stopped.add(partition)  # rewound to this record, which is tried again shortly
                        continue
                    to_send.extend(rows)
                    finished.append((partition, record))
            for partition, record in finished:
                offsets[partition] = OffsetAndMetadata(record.offset + 1, "", -1)
            handled += len(finished)
        rewound: dict = {}
        for partition, record in queue:
            rewound.setdefault(partition, record.offset)
        for partition, offset in rewound.items():
            self.consumer.seek(partition, offset)
        outbox_relay(to_send)
        if offsets:
            # Asynchronous: the database has the truth already; a lost commit only means redelivery.
            self.consumer.commit_async(offsets, callback=_commit_done)
            self.last_offsets.update(offsets)
        return handled

    def group_handle(self, group: list, deadline: float) -> tuple[int, list] | None:
        """The group's messages in one transaction, until the deadline: how many were handled and the
        rows to send; None when one failed (all rolled back, nothing to send)."""
        sent: list = []
        done = 0
        try:
            with unit_of_work(sent):
                for partition, record in group:
                    if time.monotonic() > deadline:
                        break
                    self.message_handle(partition.topic, record.value, record.headers)
                    done += 1
        except Exception as exc:  # noqa: BLE001 - any failure: the one-by-one path isolates it
            log.info(
                "a group of %d messages rolled back (%s: %s); handling them one by one",
                len(group),
                type(exc).__name__,
                exc,
            )
            return None
        for partition, record in group[:done]:
            self.transient_failures.pop((partition, record.offset), None)
        return done, sent

    def record_handle(self, partition, record) -> list | None:
        """One message in its own transaction: the rows to send, or None when a passing database error
        rewound its partition to it (tried again shortly, a bounded number of times, then skipped: the
        step's deadline and the run's lease still bring the run to an end)."""
        try:
            rows = self.handle(partition.topic, record.value, record.headers)
            self.transient_failures.pop((partition, record.offset), None)
            return rows
        except DatabaseError as exc:
            tries = self.transient_failures.get((partition, record.offset), 0) + 1
            close_old_connections()
            if tries < settings.EXECUTOR_TRANSIENT_RETRIES:
                self.transient_failures[(partition, record.offset)] = tries
                log.warning("database error on %s@%s (%s); retry %d", partition.topic, record.offset, exc, tries)
                self.consumer.seek(partition, record.offset)
                time.sleep(min(2 ** (tries - 1) * 0.1, 5))
                return None
            self.transient_failures.pop((partition, record.offset), None)
            log.error("%s@%s skipped after %d database errors: %s", partition.topic, record.offset, tries, exc)
        except Exception:  # noqa: BLE001 - one bad message must not stop the executor
            log.exception("failed to handle %s@%s; skipped", partition.topic, record.offset)
        return []

    def run(self, *, once: bool = False) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        tracing.init("executor")
        self.consumer = kafka.consumer_connect(
            *self.handlers,
            also_create=[settings.KAFKA_TASKS_TOPIC, settings.KAFKA_MONITORING_TOPIC],
            group_id=settings.KAFKA_EXECUTOR_GROUP,
            stopping=lambda: self.stopping,
        )
        if self.consumer is None:
            return
        log.info("executor started (group %s)", settings.KAFKA_EXECUTOR_GROUP)
        try:
            while not self.stopping:
                connections_refresh()
                try:
                    handled = self.poll_once()
                except KafkaError as exc:
                    log.warning("Kafka error (%s); retrying in a second", exc)
                    time.sleep(1)
                    continue
                except DatabaseError as exc:
                    # The relay after the commits lost the database: what was handled is committed,
                    # its rows wait in the outbox for the sweep, and the offsets are delivered again.
                    log.warning("database error after handling (%s); retrying in a second", exc)
                    close_old_connections()
                    time.sleep(1)
                    continue
                if self.loss.due():
                    self.loss_check()
                if time.monotonic() - self.last_tick >= settings.EXECUTOR_TICK_SECONDS:
                    try:
                        self.tick()
                    except Exception:  # noqa: BLE001 - database or broker trouble: the next tick tries again
                        log.exception("periodic check failed")
                if once and not handled and self.consumer.assignment():
                    break
        finally:
            self.final_commit()
            self.consumer.close()
            tracing.shutdown()
            log.info("executor stopped")

    def final_commit(self) -> None:
        """A clean stop leaves nothing to redeliver, for the partitions still ours: committing one that
        a rebalance gave to another executor would move its offset under the new owner."""
        owned = self.consumer.assignment()
        offsets = {tp: meta for tp, meta in self.last_offsets.items() if tp in owned}
        try:
            if offsets:
                self.consumer.commit(offsets)
        except KafkaError as exc:
            log.warning("final offset commit failed (%s)", exc)
