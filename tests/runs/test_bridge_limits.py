"""Per-agent concurrency limits in the bridge: a slow agent at its max_concurrency holds no slot."""

import asyncio
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from agents import a2a
from agents.agent_http import AgentClient
from agents.models import Agent
from runs.bridge import Bridge
from runs.gates import AgentGates
from runs.models import StepExecution
from runs.services import run_execute
from tests.factories import AgentFactory
from tests.runs.helpers import workflow_with_agents

PARTITION = TopicPartition("tasks", 0)
ANSWER = {
    "jsonrpc": "2.0",
    "id": "1",
    "result": {"kind": "message", "messageId": "m", "parts": [{"kind": "data", "data": {"ok": True}}]},
}


class CountingAgent:
    """A real HTTP agent that answers after `delay` seconds and notes how many calls it had at once."""

    def __init__(self, delay: float):
        self.calls = self.now = self.most = 0
        lock, agent = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # no agent card: the bridge speaks 0.3
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    agent.calls += 1
                    agent.now += 1
                    agent.most = max(agent.most, agent.now)
                time.sleep(delay)
                with lock:
                    agent.now -= 1
                body = json.dumps(ANSWER).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def fresh_protocol_cache():
    a2a.clear_protocol_cache()
    yield
    a2a.clear_protocol_cache()


def task_for(agent: str, index: int, **fields) -> dict:
    return {
        "run_id": str(uuid.uuid4()),
        "task_id": f"task-{agent}-{index}",
        "agent_name": agent,
        "correlation_id": f"corr-{agent}-{index}",
        "input_data": {"text": "x"},
        **fields,
    }


def recording_bridge(monkeypatch) -> tuple[Bridge, list]:
    """A bridge whose results go to a list of (seconds since start, tasks waiting then, message)."""
    bridge, published, started = Bridge(), [], time.monotonic()

    async def publish(message):
        published.append((time.monotonic() - started, bridge.waiting, message))

    monkeypatch.setattr(bridge, "publish", publish)
    return bridge, published


async def process_all(bridge: Bridge, tasks: list[dict], during=None, between=None) -> None:
    async with AgentClient() as client:
        jobs = []
        for offset, task in enumerate(tasks):
            bridge.tracker.add(PARTITION, offset)
            jobs.append(asyncio.create_task(bridge.process(client, PARTITION, offset, task)))
            await asyncio.sleep(0.01)  # they arrive in this order
            if between is not None:
                await between()
        if during is not None:
            await during()
        await asyncio.gather(*jobs)


def first_one_inside(bridge: Bridge, agent: str):
    """Waits until a call of `agent` holds its gate. Tasks read the database in parallel threads, so on
    a busy machine a later task could reach the gate first; the tests below are about the one that waits."""

    async def wait():
        for _ in range(500):
            gate = bridge.gates.gates.get(agent)
            if gate is not None and gate.inside:
                return
            await asyncio.sleep(0.01)

    return wait


@pytest.mark.django_db(transaction=True)
def test_a_slow_agent_at_its_limit_waits_without_taking_the_slots_of_others(settings, monkeypatch):
    settings.BRIDGE_MAX_IN_FLIGHT = 2  # waiting tasks holding slots would stop the fast agent at once
    with CountingAgent(delay=0.4) as slow, CountingAgent(delay=0) as fast:
        AgentFactory(name="slow", url=slow.url, max_concurrency=1)
        AgentFactory(name="fast", url=fast.url)
        bridge, published = recording_bridge(monkeypatch)
        tasks = [task_for("slow", i) for i in range(5)] + [task_for("fast", i) for i in range(5)]
        asyncio.run(process_all(bridge, tasks))
    assert slow.most == 1 and slow.calls == 5
    assert len(published) == 10 and all(m["status"] == "SUCCESS" for _, _, m in published), published
    slow_done = sorted(at for at, _, m in published if m["task_id"].startswith("task-slow"))
    fast_done = [(at, waiting) for at, waiting, m in published if m["task_id"].startswith("task-fast")]
    # The fast agent's tasks finished while the slow agent's still waited for their turn...
    assert all(at < slow_done[1] and waiting >= 3 for at, waiting in fast_done), (fast_done, slow_done)
    # ...which came one after the other.
    assert slow_done[-1] >= 5 * 0.4
    assert bridge.waiting == 0 and bridge.gates.gates == {}
    assert bridge.tracker.committable()[PARTITION].offset == 10


@pytest.mark.django_db(transaction=True)
def test_a_task_whose_deadline_passes_while_it_waits_is_not_called(monkeypatch):
    with CountingAgent(delay=1.0) as slow:
        AgentFactory(name="slow", url=slow.url, max_concurrency=1)
        bridge, published = recording_bridge(monkeypatch)
        soon = (datetime.now(UTC) + timedelta(seconds=0.4)).isoformat()
        tasks = [task_for("slow", 0), task_for("slow", 1, deadline=soon)]
        asyncio.run(process_all(bridge, tasks, between=first_one_inside(bridge, "slow")))
    assert slow.calls == 1
    (failed_at, _, failure), (_, _, answered) = sorted(published, key=lambda item: item[0])
    assert failure["task_id"] == "task-slow-1" and failure["status"] == "FAILURE"
    assert "picked up after its deadline" in failure["error_message"]
    assert "max_concurrency (1)" in failure["error_message"]
    assert failed_at < 0.9  # at its deadline, not when the agent was free again
    assert answered["task_id"] == "task-slow-0" and answered["status"] == "SUCCESS"


@pytest.mark.django_db(transaction=True)
def test_a_task_whose_step_is_cancelled_while_it_waits_is_not_called(monkeypatch):
    run = run_execute(workflow=workflow_with_agents("slow", "slow"), input_data={"text": "x"}, user=None)
    for step_id, correlation_id in (("s1", "corr-slow-0"), ("s2", "corr-slow-1")):
        StepExecution.objects.create(
            run=run, step_id=step_id, agent_name="slow", status="RUNNING", correlation_id=correlation_id
        )
    with CountingAgent(delay=0.5) as slow:
        Agent.objects.filter(name="slow").update(url=slow.url, max_concurrency=1)
        bridge, published = recording_bridge(monkeypatch)

        async def cancel_the_second():
            await asyncio.sleep(0.1)
            await asyncio.to_thread(
                lambda: StepExecution.objects.filter(correlation_id="corr-slow-1").update(status="CANCELLED")
            )

        tasks = [task_for("slow", i, run_id=str(run.id)) for i in range(2)]
        asyncio.run(process_all(bridge, tasks, during=cancel_the_second, between=first_one_inside(bridge, "slow")))
    assert slow.calls == 1
    assert [m["task_id"] for _, _, m in published] == ["task-slow-0"]
    assert bridge.tracker.committable()[PARTITION].offset == 2


class FakeConsumer:
    def __init__(self):
        self.paused_now = False
        self.batches: list[int] = []

    def assignment(self):
        return {PARTITION}

    def pause(self, *partitions):
        self.paused_now = True

    def resume(self, *partitions):
        self.paused_now = False

    def paused(self):
        return {PARTITION} if self.paused_now else set()

    def poll(self, timeout_ms, max_records):
        self.batches.append(max_records)
        return {}

    def partitions_for_topic(self, topic):
        return None

    def commit(self, offsets):
        pass

    def commit_async(self, offsets, callback):
        pass


def test_the_consumer_keeps_going_while_tasks_wait_up_to_the_waiting_bound(settings):
    settings.BRIDGE_MAX_IN_FLIGHT, settings.BRIDGE_MAX_WAITING = 4, 3
    bridge, consumer = Bridge(), FakeConsumer()
    bridge.consumer = consumer
    for offset in range(4):
        bridge.tracker.add(PARTITION, offset)
    bridge.poll()
    assert consumer.paused_now  # every slot taken, nobody waits: as before
    bridge.waiting = 2  # two of the four wait for an agent at its limit
    bridge.poll()
    assert not consumer.paused_now and consumer.batches[-1] == 2
    bridge.waiting = 50
    bridge.poll()
    assert not consumer.paused_now and consumer.batches[-1] == 3  # at most BRIDGE_MAX_WAITING on top
    for offset in range(4, 7):
        bridge.tracker.add(PARTITION, offset)
    bridge.poll()
    assert consumer.paused_now


def test_gates_hand_turns_on_in_order_and_drop_waiters_that_give_up():
    async def go():
        gates = AgentGates()
        gate = gates.gate("a", 1)
        assert gate.try_enter() and not gate.try_enter()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await gate.enter()  # gave up: no longer queued
        assert not gate.queue
        second, third = asyncio.create_task(gate.enter()), asyncio.create_task(gate.enter())
        await asyncio.sleep(0)
        gates.leave("a", gate)
        await asyncio.sleep(0)
        assert second.done() and not third.done() and gate.inside == 1
        assert gates.gate("a", None) is None  # the limit was removed: whoever waits goes in
        await asyncio.sleep(0)
        assert third.done() and gate.inside == 2
        gates.leave("a", gate)
        gates.leave("a", gate)
        assert gates.gates == {}

    asyncio.run(go())


class CommittingConsumer(FakeConsumer):
    """Records the bridge's offset commits: those it waits for and those it only sends."""

    def __init__(self):
        super().__init__()
        self.waited, self.sent = [], []

    def commit(self, offsets):
        self.waited.append({p: m.offset for p, m in offsets.items()})

    def commit_async(self, offsets, callback):
        self.sent.append(({p: m.offset for p, m in offsets.items()}, callback, offsets))


def test_offsets_are_committed_without_waiting_and_a_failed_commit_is_sent_again():
    bridge, consumer = Bridge(), CommittingConsumer()
    bridge.consumer = consumer
    for offset in range(3):
        bridge.tracker.add(PARTITION, offset)
        bridge.tracker.done(PARTITION, offset)
    bridge.poll()
    assert consumer.waited == [] and [sent for sent, _, _ in consumer.sent] == [{PARTITION: 3}]
    bridge.poll()
    assert len(consumer.sent) == 1  # in flight: not sent again
    _, callback, offsets = consumer.sent[0]
    callback(offsets, KafkaError("rebalance"))  # kafka-python's answer to a commit that failed
    bridge.poll()
    assert [sent for sent, _, _ in consumer.sent] == [{PARTITION: 3}, {PARTITION: 3}]
    _, callback, offsets = consumer.sent[1]
    callback(offsets, None)  # went through
    bridge.tracker.add(PARTITION, 3)
    bridge.tracker.done(PARTITION, 3)
    bridge.poll(final=True)  # the last one, before the consumer closes, is waited for
    assert consumer.waited == [{PARTITION: 4}] and len(consumer.sent) == 2
