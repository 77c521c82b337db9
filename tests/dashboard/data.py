"""A known data set for the dashboard: runs, step tries, outbox rows, deliveries and one open circuit,
at fixed distances from now, with the figures the dashboard must show for them."""

import time
from datetime import timedelta

from django.utils import timezone

from agents import breaker
from agents.models import Agent, AgentCircuit
from core.models import OutboxMessage
from runs.models import Run, StepExecution
from tests.runs.helpers import workflow_with_agents
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.signing import secret_generate

HOUR = timedelta(hours=1)
RUNS = {  # age -> statuses of the runs created then
    HOUR: ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED", "RUNNING"],
    30 * HOUR: ["COMPLETED", "FAILED", "FAILED", "CANCELLED"],
    10 * 24 * HOUR: ["FAILED"] * 5,  # outside both windows
}
EXPECTED = {
    "24h": {"COMPLETED": 3, "FAILED": 1, "RUNNING": 1, "total": 5, "rate": "25.0 %"},
    "7d": {"COMPLETED": 4, "FAILED": 3, "RUNNING": 1, "CANCELLED": 1, "total": 9, "rate": "42.9 %"},
}
# Step tries (step id, agent, status, duration ms, age). p95 (percentile_cont, linear interpolation):
# s1 over 100..1000 -> rank 3.8 -> 400 + 0.8 * 600 = 880 ms; s2 over 50, 60, 70 -> 69 ms.
STEPS = [
    *(("s1", "a", "COMPLETED", ms, HOUR) for ms in (100, 200, 300, 400, 1000)),
    ("s1", "a", "RUNNING", None, HOUR),  # not ended: a call, but no duration
    ("s2", "b", "COMPLETED", 50, HOUR),
    ("s2", "b", "COMPLETED", 60, 30 * HOUR),
    ("s2", "b", "FAILED", 70, 30 * HOUR),
    ("s1", "a", "COMPLETED", 99_999, 10 * 24 * HOUR),  # outside both windows
]
P95_24H = {"s1": 880.0, "s2": 50.0}
P95_7D = {"s1": 880.0, "s2": 69.0}
CALLS_24H = {"a": 6, "b": 1}
CALLS_7D = {"a": 6, "b": 3}


def _aged(model, pk, age, now):
    model.objects.filter(pk=pk).update(created_at=now - age)


def build(scale: int = 1, workflow=None) -> dict:
    """The data set; `scale` > 1 repeats the runs and steps (same shape, more rows) for query counts,
    given the workflow of an earlier call."""
    now = timezone.now()
    workflow = workflow or workflow_with_agents("a", "b")
    runs = []
    for age, statuses in RUNS.items():
        for status in statuses * scale:
            run = Run.objects.create(
                workflow=workflow, workflow_name=workflow.name, workflow_version=1, plan={}, status=status
            )
            _aged(Run, run.pk, age, now)
            runs.append(run)
    for copy in range(scale):
        for try_number, (step_id, agent, status, ms, age) in enumerate(STEPS, start=1):
            step = StepExecution.objects.create(
                run=runs[copy], step_id=step_id, agent_name=agent, status=status, duration_ms=ms, try_number=try_number
            )
            _aged(StepExecution, step.pk, age, now)
    for sent, dead in ((None, None), (None, None), (None, now), (now, None)):
        OutboxMessage.objects.create(topic="t", key="k", payload={}, next_attempt_at=now, sent_at=sent, dead_at=dead)
    endpoint = WebhookEndpoint.objects.create(
        url="https://example.com/hook", event_types=["*"], secret=secret_generate()
    )
    for status, age in (
        ("PENDING", HOUR),
        ("PENDING", HOUR),
        ("RETRYING", HOUR),
        ("FAILED", HOUR),
        ("FAILED", 10 * 24 * HOUR),
        ("SUCCEEDED", HOUR),
    ):
        delivery = Delivery.objects.create(endpoint=endpoint, event_type="run.completed", status=status)
        _aged(Delivery, delivery.pk, age, now)
    agent_b = Agent.objects.get(name="b")
    circuit = {
        **breaker.fresh(),
        "state": breaker.OPEN,
        "opened_at": time.time() - 5,
        "retry_at": time.time() + 60,
        "last_error": "connection refused <b>",
    }
    AgentCircuit.objects.update_or_create(agent=agent_b, defaults={"data": circuit})
    return {"workflow": workflow, "agent_b": agent_b, "steps_run": runs[0]}
