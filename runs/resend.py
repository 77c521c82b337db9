"""What the executor sends again when the broker lost its messages (it restarted empty).

The messages in flight were: execution requests of PENDING runs, and agent tasks of RUNNING steps
(or their results, on their way back). Each is sent again under its run's lock, as it was: the same
task and correlation ids and deadline, so a result that does arrive twice is ignored the second
time. A completed step is never sent again; an agent call that was in flight may be made once more.
"""

import logging

from django.conf import settings
from django.core.cache import cache

from core.outbox import outbox_enqueue, outbox_relay
from runs import messages
from runs.choices import LogSource, RunStatus, StepStatus
from runs.input import answered, reply_task
from runs.models import Run
from runs.services import execution_request_enqueue, run_log
from runs.work import locked_run, unit_of_work

log = logging.getLogger(__name__)
RESEND_LOCK = "executor:inflight-resend"
RESEND_LOCK_SECONDS = 10  # several executors notice the same loss: one of them sends the work again
BATCH = 500


def inflight_resend(round_: int = 0) -> int:
    """Sends again the work in flight of every active run. Returns how many messages went out.

    `round_` 0 is at the loss, the next ones a few seconds later (KAFKA_LOSS_RESEND_AGAIN_SECONDS):
    each executor that noticed the loss asks for each round, and one of them sends it."""
    if not cache.add(f"{RESEND_LOCK}:{round_}", True, timeout=RESEND_LOCK_SECONDS):
        return 0
    total, sent = 0, []
    # A paused run's steps in flight are still waited for: their tasks go again too.
    active = Run.objects.filter(status__in=(RunStatus.PENDING, RunStatus.RUNNING, RunStatus.PAUSED)).order_by("pk")
    for run_id in active.values_list("pk", flat=True).iterator(chunk_size=BATCH):
        with unit_of_work(sent):
            run = locked_run(run_id)
            if run is not None:
                run_resend(run, round_)
        if len(sent) >= BATCH:
            total += outbox_relay(sent)
            sent = []
    total += outbox_relay(sent)
    log.warning("the broker lost its messages: %d message(s) of runs in flight sent again (round %d)", total, round_)
    return total


def run_resend(run: Run, round_: int = 0) -> None:
    if run.status == RunStatus.PENDING:
        execution_request_enqueue(run)
        return
    if run.status not in (RunStatus.RUNNING, RunStatus.PAUSED):
        return
    steps = run.steps.filter(status=StepStatus.RUNNING, step_type="agent", correlation_id__isnull=False)
    resent = []
    for execution in steps:
        retry = (run.plan.get("steps") or {}).get(execution.step_id, {}).get("retry")
        # A step answered by a person: its reply again (runs/input.py), else the try's task.
        task = reply_task(run, execution) if answered(execution) else messages.agent_task(run, execution, retry=retry)
        outbox_enqueue(topic=settings.KAFKA_TASKS_TOPIC, key=str(run.id), payload=task)
        resent.append(execution.step_id)
    if resent:
        run_log(
            run,
            "The broker lost its messages; the tasks of the running steps were sent again",
            source=LogSource.EXECUTOR,
            data={"steps": resent, "round": round_},
        )
