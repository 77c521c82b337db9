"""Traces: one trace from the API request through the outbox, Kafka, the executor and the bridge to the
agent, which gets the `traceparent`; and nothing at all while tracing is off."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connections
from kafka.structs import TopicPartition
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from agents.agent_http import AgentClient
from core import kafka, tracing
from core.models import OutboxMessage
from core.outbox import outbox_relay
from runs.bridge import Bridge
from runs.executor import Executor
from runs.models import Run
from tests.runs.helpers import workflow_with_agents
from tests.support.http_server import StubServer

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_PARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
ANSWER = {
    "jsonrpc": "2.0",
    "id": "1",
    "result": {
        "kind": "task",
        "id": "agent-task-1",
        "status": {"state": "completed"},
        "artifacts": [{"parts": [{"kind": "text", "text": "HELLO"}]}],
    },
}


class Future:
    """An acknowledged send: waited on with get() (the outbox) or through its callbacks (the bridge)."""

    def get(self, timeout=None):
        return None

    def add_callback(self, callback):
        callback(None)
        return self

    def add_errback(self, errback):
        return self


class Producer:
    """Stands in for Kafka: keeps what was sent, with its headers, for the test to deliver."""

    def __init__(self):
        self.sent: list[dict] = []

    def send(self, topic, key=None, value=None, headers=None):
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": headers})
        return Future()

    def flush(self, timeout=None):
        pass

    def take(self, topic: str) -> list[dict]:
        taken = [m for m in self.sent if m["topic"] == topic]
        self.sent = [m for m in self.sent if m["topic"] != topic]
        return taken


@pytest.fixture
def producer(monkeypatch):
    fake = Producer()
    monkeypatch.setattr(kafka, "producer", lambda: fake)
    return fake


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)
    provider.shutdown()


def deliver(executor: Executor, producer: Producer, topic: str) -> None:
    """Hands what was sent to `topic` to the executor, as its consumer would, and relays what it wrote."""
    for message in producer.take(topic):
        outbox_relay(executor.handle(topic, kafka.encode(message["value"]), message["headers"]))


def bridge_process(task: dict, headers) -> None:
    """One task through the bridge, with the headers its Kafka message had."""
    bridge, partition = Bridge(), TopicPartition(settings.KAFKA_TASKS_TOPIC, 0)
    bridge.db = ThreadPoolExecutor(1)  # one database thread, whose connection is closed after

    async def go():
        async with AgentClient() as client:
            bridge.tracker.add(partition, 0)
            await bridge.process(client, partition, 0, task, headers)

    asyncio.run(go())
    bridge.db.submit(connections.close_all).result()


def run_through(operator, producer, agent_url: str, headers: dict) -> Run:
    """A one-step run from the API to the agent and back, every process's part driven here."""
    workflow = workflow_with_agents("shout", url=agent_url)
    response = operator.post(
        f"/api/v1/workflows/{workflow.id}/execute", {"input_data": {"text": "hello"}}, format="json", **headers
    )
    assert response.status_code == 202, response.content
    executor = Executor()
    deliver(executor, producer, settings.KAFKA_EXECUTION_TOPIC)  # relayed by the (eager) Celery task
    [task] = producer.take(settings.KAFKA_TASKS_TOPIC)
    bridge_process(task["value"], task["headers"])
    deliver(executor, producer, settings.KAFKA_RESULTS_TOPIC)
    return Run.objects.get(pk=response.json()["id"])


@pytest.mark.django_db(transaction=True)
def test_one_trace_from_the_api_request_to_the_agent_call(operator, producer, spans):
    with StubServer({"/": (200, ANSWER, 0)}) as agent:
        run = run_through(operator, producer, agent.url + "/", {"HTTP_TRACEPARENT": CALLER_PARENT})
        [(_, agent_headers)] = [(path, h) for path, h in agent.requests if path == "/"]
    assert run.status == "COMPLETED", run.error_message

    finished = spans.get_finished_spans()
    by_name = {span.name: span for span in finished}
    assert {span.context.trace_id for span in finished} == {int(CALLER_TRACE, 16)}  # the caller's trace, all of it

    [request] = [span for span in finished if span.kind == SpanKind.SERVER]
    assert request.name == "POST /api/v1/workflows/{pk}/execute"  # the route: one name for every workflow
    assert request.parent.span_id == int(CALLER_PARENT.split("-")[2], 16)
    assert request.attributes["http.response.status_code"] == 202
    send_request = by_name[f"send {settings.KAFKA_EXECUTION_TOPIC}"]
    execute = by_name[f"executor {settings.KAFKA_EXECUTION_TOPIC}"]
    send_task = by_name[f"send {settings.KAFKA_TASKS_TOPIC}"]
    bridge_task = by_name["bridge task"]
    call = by_name["agent call shout"]
    result = by_name[f"executor {settings.KAFKA_RESULTS_TOPIC}"]

    def parent_of(span):
        return span.parent.span_id

    assert parent_of(send_request) == request.context.span_id  # outbox row -> relay
    assert parent_of(execute) == send_request.context.span_id  # Kafka headers -> executor
    assert parent_of(send_task) == execute.context.span_id
    assert parent_of(bridge_task) == send_task.context.span_id  # Kafka headers -> bridge
    assert parent_of(call) == bridge_task.context.span_id
    assert parent_of(result) == bridge_task.context.span_id  # the result's headers -> executor
    assert (send_request.kind, execute.kind, bridge_task.kind, call.kind) == (
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
        SpanKind.CONSUMER,
        SpanKind.CLIENT,
    )

    for span in (execute, send_task, bridge_task, call, result):
        assert span.attributes["run.id"] == str(run.id), span.name
    for span in (bridge_task, call, result):
        assert span.attributes["step.id"] == "s1" and span.attributes["agent.name"] == "shout", span.name
    assert bridge_task.attributes["task.id"] == call.attributes["task.id"] == result.attributes["task.id"]

    # The agent saw the trace, with the call's span as its parent.
    traceparent = {k.lower(): v for k, v in agent_headers.items()}["traceparent"]
    version, trace_id, parent_id, _ = traceparent.split("-")
    assert (version, trace_id, parent_id) == ("00", CALLER_TRACE, format(call.context.span_id, "016x"))


@pytest.mark.django_db(transaction=True)
def test_a_request_without_a_traceparent_starts_a_trace_the_outbox_row_carries(operator, producer, spans):
    workflow = workflow_with_agents("shout")
    response = operator.post(f"/api/v1/workflows/{workflow.id}/execute", {"input_data": {"text": "x"}}, format="json")
    row = OutboxMessage.objects.get(topic=settings.KAFKA_EXECUTION_TOPIC, key=response.json()["id"])
    [request] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert request.parent is None
    assert row.trace_context["traceparent"].split("-")[1] == format(request.context.trace_id, "032x")
    [sent] = producer.take(settings.KAFKA_EXECUTION_TOPIC)
    assert dict(sent["headers"])["traceparent"].decode().split("-")[1] == format(request.context.trace_id, "032x")


@pytest.mark.django_db(transaction=True)
def test_off_by_default_nothing_is_recorded_or_sent(operator, producer):
    assert not tracing.enabled() and not tracing.init("web")  # no OTEL_EXPORTER_OTLP_ENDPOINT in tests
    with StubServer({"/": (200, ANSWER, 0)}) as agent:
        run = run_through(operator, producer, agent.url + "/", {"HTTP_TRACEPARENT": CALLER_PARENT})
        agent_headers = [{k.lower() for k in h} for path, h in agent.requests if path == "/"]
    assert run.status == "COMPLETED"
    assert OutboxMessage.objects.filter(trace_context__isnull=False).count() == 0
    assert agent_headers and all("traceparent" not in headers for headers in agent_headers)


def test_the_environment_turns_it_on_with_the_process_name(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert not tracing.configured()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.configured()
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    assert tracing.configured()
    try:
        assert tracing.init("executor")
        assert tracing.init("web")  # the first call wins
        assert tracing._state.provider.resource.attributes["service.name"] == "wfplatform-executor"
    finally:
        provider = tracing._state.provider
        tracing.use(None)
        provider.shutdown()  # no span was made: nothing to export to the unreachable endpoint


def test_kafka_headers_round_trip_a_context():
    carrier = {"traceparent": CALLER_PARENT, "tracestate": "vendor=1"}
    headers = tracing.kafka_headers(carrier)
    assert headers == [("traceparent", CALLER_PARENT.encode()), ("tracestate", b"vendor=1")]
    from opentelemetry import trace

    context = trace.get_current_span(tracing.extract(headers)).get_span_context()
    assert format(context.trace_id, "032x") == CALLER_TRACE and context.is_remote
    assert json.dumps(tracing.attributes_of({"run_id": "r", "step_id": "", "task_id": "t"})) == (
        '{"run.id": "r", "task.id": "t"}'
    )
