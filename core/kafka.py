"""One place that knows how we talk to Kafka: JSON values, string keys, settings-driven clients."""

import asyncio
import itertools
import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime

from django.conf import settings
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition

log = logging.getLogger(__name__)

_producer = None
LOSS_CHECK_TIMEOUT_MS = 2000
_producer_lock = threading.Lock()


class KafkaNotConfigured(RuntimeError):
    pass


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def new_message_id() -> str:
    return str(uuid.uuid4())


def encode(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def decode(raw: bytes | None) -> dict:
    """The JSON object in a message value; ValueError for anything else (the caller logs and skips it)."""
    if raw is None:
        raise ValueError("empty message")
    value = json.loads(raw.decode("utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"message is JSON {type(value).__name__}, not an object")
    return value


def bootstrap_servers() -> list[str]:
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        raise KafkaNotConfigured("KAFKA_BOOTSTRAP_SERVERS is not set")
    return settings.KAFKA_BOOTSTRAP_SERVERS


def producer() -> KafkaProducer:
    """The process-wide producer (thread-safe); acks=all so a sent message survives a broker failover."""
    global _producer
    with _producer_lock:
        if _producer is None:
            _producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers(),
                acks="all",
                linger_ms=0,
                # Consumers dedupe by ids, so broker-side idempotence buys nothing, and its producer id
                # does not survive a broker that restarts empty (the embedded one): sends would fail forever.
                enable_idempotence=False,
                retries=3,
                delivery_timeout_ms=settings.KAFKA_SEND_TIMEOUT_SECONDS * 1000 * 3,
                max_block_ms=settings.KAFKA_SEND_TIMEOUT_SECONDS * 1000,
                request_timeout_ms=settings.KAFKA_SEND_TIMEOUT_SECONDS * 1000,
                max_request_size=settings.KAFKA_MAX_MESSAGE_BYTES,
                key_serializer=lambda key: key.encode(),
                value_serializer=encode,
            )
        return _producer


def producer_reset() -> None:
    """Drops the producer after a failure so the next send reconnects from scratch."""
    global _producer
    with _producer_lock:
        if _producer is not None:
            try:
                _producer.close(timeout=1)
            except Exception:  # noqa: BLE001 - closing a broken producer must not hide the first error
                log.debug("closing the Kafka producer failed", exc_info=True)
        _producer = None


async def acknowledged(future, timeout: float):
    """Waits on the event loop for a produce's acknowledgement (kafka-python's future, which its sender
    thread resolves), without a thread of its own blocked in `future.get` for each message in flight.
    Raises what the send failed with, or TimeoutError after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def settle(outcome, failed: bool) -> None:
        if done.done():  # given up on already (the timeout)
            return
        if failed:
            done.set_exception(outcome)
        else:
            done.set_result(outcome)

    future.add_callback(lambda metadata: loop.call_soon_threadsafe(settle, metadata, False))
    future.add_errback(lambda exc: loop.call_soon_threadsafe(settle, exc, True))
    async with asyncio.timeout(timeout):
        return await done


def consumer(*topics: str, group_id: str) -> KafkaConsumer:
    return KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers(),
        group_id=group_id,
        enable_auto_commit=False,  # offsets are committed after our database work commits
        auto_offset_reset="earliest",
        max_poll_interval_ms=settings.KAFKA_MAX_POLL_INTERVAL_MS,
        session_timeout_ms=settings.KAFKA_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=max(settings.KAFKA_SESSION_TIMEOUT_MS // 5, 100),
        fetch_max_wait_ms=settings.KAFKA_FETCH_MAX_WAIT_MS,
        # One message may be as large as we allow producers to send.
        max_partition_fetch_bytes=max(settings.KAFKA_MAX_MESSAGE_BYTES, 1_048_576),
        # Notice new partitions (a topic re-created with another count) within seconds, not minutes.
        metadata_max_age_ms=30_000,
        key_deserializer=lambda key: key.decode("utf-8", "replace") if key is not None else None,
    )


def topics_ensure(topics: list[str]) -> None:
    """Creates our topics when missing, so consumers that start first do not wait for a metadata refresh."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers())
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        for topic in missing:
            try:
                config = {"max.message.bytes": str(settings.KAFKA_MAX_MESSAGE_BYTES)}
                admin.create_topics([NewTopic(topic, settings.KAFKA_TOPIC_PARTITIONS, 1, topic_configs=config)])
            except TopicAlreadyExistsError:
                pass  # another process created it in between
            except KafkaError as exc:
                log.warning("could not create topic %s: %s", topic, exc)
    finally:
        admin.close()


class LossWatch:
    """Notices that the broker lost its messages: it came back empty (the embedded broker keeps them
    in memory). A log's end never moves back otherwise, so an end below one seen earlier is the
    signal. Watches `topics` (those the process reads and those it writes), and rewinds the consumer's
    own partitions whose position is past the new end, which reading on would wait at forever."""

    def __init__(self, topics):
        self.topics = list(topics)
        self.ends: dict = {}
        self.checked = 0.0

    def due(self) -> bool:
        return time.monotonic() - self.checked >= settings.KAFKA_LOSS_CHECK_SECONDS

    def check(self, consumer: KafkaConsumer) -> list:
        """The partitions whose messages were lost since the last check (empty: nothing was)."""
        self.checked = time.monotonic()
        partitions = [TopicPartition(t, p) for t in self.topics for p in consumer.partitions_for_topic(t) or ()]
        if not partitions:
            return []
        try:
            ends = consumer.end_offsets(partitions, timeout_ms=LOSS_CHECK_TIMEOUT_MS)
        except (KafkaError, KeyError):
            # The broker is away, or a partition is not in the metadata yet (kafka-python raises a
            # KeyError for one the broker forgot): the next check sees.
            return []
        lost = [tp for tp, end in ends.items() if end < self.ends.get(tp, 0)]
        self.ends.update(ends)
        if lost:
            log.warning("the broker lost the messages of %s (restarted empty?)", sorted(lost))
            assigned = consumer.assignment()
            behind = [tp for tp in lost if tp in assigned and consumer.position(tp) > ends[tp]]
            if behind:
                consumer.seek_to_beginning(*behind)
        return lost


def consumer_connect(*topics: str, group_id: str, stopping, also_create=()) -> KafkaConsumer | None:
    """A consumer of `topics` once the broker answers; waits (and says so) while it does not.

    The topics (and `also_create`, the ones this process writes to) are created when missing.
    None if asked to stop while waiting."""
    for attempt in itertools.count():
        if stopping():
            return None
        try:
            topics_ensure([*topics, *also_create])
            return consumer(*topics, group_id=group_id)
        except KafkaError as exc:
            if attempt == 0 or attempt % 10 == 0:
                log.warning("waiting for Kafka at %s (%s)", ",".join(bootstrap_servers()), exc)
            time.sleep(min(0.5 * 2**attempt, 5))
    return None


class OffsetTracker:
    """Per partition: the offsets in flight; what may be committed is everything below the lowest of them."""

    def __init__(self):
        self.in_flight: dict = defaultdict(set)
        self.next_offset: dict = {}
        self.committed: dict = {}
        self.lock = threading.Lock()  # calls finish on the loop thread, commits happen on the poll thread

    def add(self, partition, offset: int) -> None:
        with self.lock:
            self.in_flight[partition].add(offset)
            self.next_offset[partition] = max(self.next_offset.get(partition, 0), offset + 1)

    def done(self, partition, offset: int) -> None:
        with self.lock:
            self.in_flight[partition].discard(offset)

    def count(self) -> int:
        with self.lock:
            return sum(len(offsets) for offsets in self.in_flight.values())

    def committable(self) -> dict:
        with self.lock:
            return self._committable()

    def _committable(self) -> dict:
        offsets = {}
        for partition, upper in self.next_offset.items():
            pending = self.in_flight[partition]
            offset = min(pending) if pending else upper
            if self.committed.get(partition) != offset:
                offsets[partition] = OffsetAndMetadata(offset, "", -1)
        return offsets

    def mark_committed(self, offsets: dict) -> None:
        with self.lock:
            for partition, meta in offsets.items():
                self.committed[partition] = meta.offset

    def commit_failed(self, offsets: dict) -> None:
        """Unmarks offsets marked committed when their commit was sent, so the next poll sends them again."""
        with self.lock:
            for partition, meta in offsets.items():
                if self.committed.get(partition) == meta.offset:
                    del self.committed[partition]

    def forget(self, keep) -> None:
        with self.lock:
            self._forget(keep)

    def _forget(self, keep) -> None:
        for partition in list(self.next_offset):
            if partition not in keep:
                self.next_offset.pop(partition, None)
                self.in_flight.pop(partition, None)
                self.committed.pop(partition, None)
