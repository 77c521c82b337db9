"""Messages of the engine that Kafka never took (too large for it, or refused too many times): what
waited for them ends now, with the reason, instead of at a deadline or a lease."""

from django.conf import settings

from core.models import OutboxMessage
from core.outbox import outbox_on_dead, outbox_relay
from runs import messages
from runs.choices import LogSource, RunStatus
from runs.executor import agent_result_handle
from runs.services import run_transition
from runs.work import locked_run, unit_of_work


def task_undelivered(message: OutboxMessage, error: str) -> None:
    """The step fails as if the agent had failed: its retry policy applies, then the run's rules."""
    failure = messages.agent_result(
        message.payload,
        ok=False,
        output=None,
        error=f"The agent task could not be sent to Kafka: {error}",
        duration_ms=0,
    )
    sent: list = []
    with unit_of_work(sent):
        agent_result_handle(failure)
    outbox_relay(sent)


def request_undelivered(message: OutboxMessage, error: str) -> None:
    """A run whose execution request never went fails, unless it started anyway (a request sent
    again after a lease, for a run already RUNNING, is only a nudge)."""
    payload = message.payload
    sent: list = []
    with unit_of_work(sent):
        run = locked_run(payload.get("run_id"))
        if run is None or run.status != RunStatus.PENDING or payload.get("attempt", run.attempt) != run.attempt:
            return
        run_transition(
            run,
            RunStatus.FAILED,
            source=LogSource.API,
            error=f"The execution request could not be sent to Kafka: {error}"[:2000],
        )
    outbox_relay(sent)


def handlers_register() -> None:
    outbox_on_dead(settings.KAFKA_TASKS_TOPIC, task_undelivered)
    outbox_on_dead(settings.KAFKA_EXECUTION_TOPIC, request_undelivered)
