"""Deciding what a run does next, from what the database says happened so far.

Nothing here keeps state between calls: every decision reads the run's step executions, so any
executor can take any message and a crashed executor loses nothing. The caller holds the run's row
lock. Plans are walked step by step from `start_step`; each step type answers "done, waiting or
failed" for itself, which is where the control-flow types (parallel, conditional, loop, fork-join)
plug in.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from agents.choices import AgentStatus
from agents.models import Agent
from agents.policy import retry_delay, retry_policy
from core.outbox import outbox_enqueue
from runs import messages
from runs.choices import ACTIVE_STEP, LogLevel, LogSource, RunStatus, StepStatus
from runs.models import Run, StepExecution
from runs.services import monitoring_publish, run_log, run_transition, step_transition
from workflows.definition.references import UnresolvedReference, resolve_value

SOURCE = LogSource.EXECUTOR


@dataclass
class Outcome:
    status: str  # StepStatus.COMPLETED, FAILED, or RUNNING (= waiting)
    output: object = None
    error: str = ""


WAITING = Outcome(StepStatus.RUNNING)


def live_agent(name: str) -> Agent | None:
    return Agent.objects.live().filter(name=name).first()


class Decider:
    def __init__(self, run: Run):
        self.run = run
        self.plan = run.plan
        self.latest: dict[tuple[str, str], StepExecution] = {}
        self.latest_all = list(run.steps.order_by("attempt", "try_number", "created_at"))
        for execution in self.latest_all:
            self.latest[(execution.scope, execution.step_id)] = execution

    # -- the walk --------------------------------------------------------------------------------

    def decide(self) -> None:
        """Dispatches what is ready, or finishes the run when its last step is done or a step failed."""
        if self.run.status != RunStatus.RUNNING:
            return
        outcome = self.sequence(self.plan["start_step"], scope="")
        if outcome.status == StepStatus.COMPLETED:
            run_transition(self.run, RunStatus.COMPLETED, source=SOURCE, output=outcome.output)
        elif outcome.status == StepStatus.FAILED:
            run_transition(self.run, RunStatus.FAILED, source=SOURCE, error=outcome.error)
        else:
            self.lease_renew()

    def sequence(self, step_id: str | None, *, scope: str) -> Outcome:
        """Runs steps through `next_step`; the output of a sequence is its last step's output."""
        outcome = Outcome(StepStatus.COMPLETED)
        while step_id:
            outcome = self.step(step_id, scope=scope)
            if outcome.status != StepStatus.COMPLETED:
                return outcome
            step_id = self.plan["steps"][step_id].get("next_step")
        return outcome

    def step(self, step_id: str, *, scope: str) -> Outcome:
        step = self.plan["steps"][step_id]
        execution = self.latest.get((scope, step_id))
        if execution is not None and execution.status == StepStatus.COMPLETED:
            return Outcome(StepStatus.COMPLETED, execution.output_data)
        if execution is not None and execution.attempt == self.run.attempt:
            if execution.status in ACTIVE_STEP:
                return WAITING
            return Outcome(StepStatus.FAILED, error=f"Step '{step_id}' failed: {execution.error_message}")
        kind = step.get("type") or "agent"
        if kind != "agent":
            return Outcome(StepStatus.FAILED, error=f"Step '{step_id}': step type '{kind}' is not supported yet")
        execution = self.agent_dispatch(step, scope=scope)
        if execution.status == StepStatus.FAILED:
            return Outcome(StepStatus.FAILED, error=f"Step '{step_id}' failed: {execution.error_message}")
        return WAITING

    # -- agent steps -----------------------------------------------------------------------------

    def outputs(self, scope: str) -> dict:
        return {
            step_id: execution.output_data
            for (found_scope, step_id), execution in self.latest.items()
            if found_scope in ("", scope) and execution.status == StepStatus.COMPLETED
        }

    def agent_dispatch(self, step: dict, *, scope: str, try_number: int = 1) -> StepExecution:
        execution = StepExecution(
            run=self.run,
            step_id=step["id"],
            step_type="agent",
            agent_name=step.get("agent_name", ""),
            scope=scope,
            attempt=self.run.attempt,
            try_number=try_number,
        )
        self.latest[(scope, step["id"])] = execution
        try:
            execution.input_data = resolve_value(
                step.get("input_mapping") or {}, {"input": self.run.input_data, "outputs": self.outputs(scope)}
            )
        except UnresolvedReference as exc:
            return self.fail_at_dispatch(execution, f"Cannot resolve the input: {exc}")
        agent = live_agent(execution.agent_name)
        if agent is None:
            return self.fail_at_dispatch(execution, f"Agent '{execution.agent_name}' does not exist (it was deleted)")
        if agent.status != AgentStatus.ACTIVE:
            return self.fail_at_dispatch(execution, f"Agent '{execution.agent_name}' is {agent.status}")
        execution.timeout_ms = step["timeout_seconds"] * 1000 if step.get("timeout_seconds") else agent.timeout_ms
        self.send(execution, retry=step.get("retry"))
        return execution

    def fail_at_dispatch(self, execution: StepExecution, error: str) -> StepExecution:
        now = timezone.now()
        step_transition(execution, StepStatus.FAILED)
        execution.error_message = error
        execution.started_at = execution.completed_at = now
        execution.save()
        run_log(
            self.run,
            f"Step '{execution.step_id}' failed: {error}",
            source=SOURCE,
            level=LogLevel.ERROR,
            step_id=execution.step_id,
        )
        monitoring_publish(self.run, status=StepStatus.FAILED, step_id=execution.step_id, metadata={"error": error})
        return execution

    def send(self, execution: StepExecution, *, retry: dict | None) -> None:
        """Marks the try RUNNING and queues its agent task (sent by the executor after commit)."""
        now = timezone.now()
        suffix = secrets.token_hex(4)
        step_transition(execution, StepStatus.RUNNING)
        execution.started_at = now
        execution.task_id = f"task-{execution.step_id}-{suffix}"
        execution.correlation_id = f"corr-{self.run.id}-{execution.step_id}-{suffix}"
        grace = timedelta(seconds=settings.EXECUTOR_STEP_GRACE_SECONDS)
        execution.due_at = now + timedelta(milliseconds=execution.timeout_ms) + grace
        execution.save()
        task = messages.agent_task(self.run, execution, retry=retry)
        outbox_enqueue(topic=settings.KAFKA_TASKS_TOPIC, key=str(self.run.id), payload=task)
        run_log(
            self.run,
            f"Step '{execution.step_id}' dispatched to agent '{execution.agent_name}'",
            source=SOURCE,
            step_id=execution.step_id,
            data={"task_id": execution.task_id, "try": execution.try_number, "timeout_ms": execution.timeout_ms},
        )
        monitoring_publish(
            self.run, status=StepStatus.RUNNING, step_id=execution.step_id, metadata={"task_id": execution.task_id}
        )

    def lease_renew(self) -> None:
        """A waiting run is looked at again by recovery once its lease and every active step's deadline pass."""
        deadlines = [e.due_at for e in self.latest.values() if e.status in ACTIVE_STEP and e.due_at]
        now = timezone.now()
        lease = max([now + timedelta(seconds=settings.EXECUTOR_LEASE_SECONDS), *deadlines])
        current = self.run.lease_expires_at
        # Renewing at every step would cost a write each time; half a lease of slack is enough.
        half = timedelta(seconds=settings.EXECUTOR_LEASE_SECONDS / 2)
        if current is not None and current - now >= half and all(d <= current for d in deadlines):
            return
        self.run.lease_expires_at = lease
        Run.objects.filter(pk=self.run.pk).update(lease_expires_at=lease)

    # -- results and deadlines -------------------------------------------------------------------

    def result_record(self, execution: StepExecution, result: dict) -> None:
        now = timezone.now()
        execution.completed_at = now
        execution.duration_ms = result.get("duration_ms") or int((now - execution.started_at).total_seconds() * 1000)
        if result.get("status") == "SUCCESS":
            step_transition(execution, StepStatus.COMPLETED)
            execution.output_data = result.get("output_data")
            message, level = f"Step '{execution.step_id}' completed", LogLevel.INFO
        else:
            step_transition(execution, StepStatus.FAILED)
            execution.error_message = str(result.get("error_message") or "The agent reported a failure")
            message, level = f"Step '{execution.step_id}' failed: {execution.error_message}", LogLevel.ERROR
        execution.save(update_fields=["status", "output_data", "error_message", "completed_at", "duration_ms"])
        run_log(
            self.run,
            message,
            source=SOURCE,
            level=level,
            step_id=execution.step_id,
            data={"task_id": execution.task_id, "duration_ms": execution.duration_ms},
        )
        metadata = {"duration_ms": execution.duration_ms}
        if execution.error_message:
            metadata["error"] = execution.error_message
        monitoring_publish(self.run, status=execution.status, step_id=execution.step_id, metadata=metadata)
        self.decide()

    def overdue_handle(self, now) -> None:
        """Times out RUNNING tries past their deadline (retrying per policy) and sends PENDING retries that are due."""
        for execution in list(self.latest.values()):
            if execution.due_at is None or execution.due_at > now or execution.attempt != self.run.attempt:
                continue
            step = self.plan["steps"][execution.step_id]
            if execution.status == StepStatus.PENDING:
                self.send(execution, retry=step.get("retry"))
            elif execution.status == StepStatus.RUNNING:
                self.timeout(execution, step, now)
        self.decide()

    def timeout(self, execution: StepExecution, step: dict, now) -> None:
        step_transition(execution, StepStatus.FAILED)
        execution.completed_at = now
        execution.error_message = f"Timed out: no result from agent '{execution.agent_name}' within " + (
            f"{execution.timeout_ms} ms (+{settings.EXECUTOR_STEP_GRACE_SECONDS} s grace)"
        )
        execution.save()
        run_log(
            self.run,
            f"Step '{execution.step_id}': {execution.error_message}",
            source=SOURCE,
            level=LogLevel.WARNING,
            step_id=execution.step_id,
        )
        agent = live_agent(execution.agent_name)
        policy = retry_policy(agent.retry_config if agent else None, step.get("retry"))
        if execution.try_number > policy["max_retries"]:
            monitoring_publish(
                self.run,
                status=StepStatus.FAILED,
                step_id=execution.step_id,
                metadata={"error": execution.error_message},
            )
            return
        retry = StepExecution(
            run=self.run,
            step_id=execution.step_id,
            step_type=execution.step_type,
            agent_name=execution.agent_name,
            scope=execution.scope,
            iteration=execution.iteration,
            branch=execution.branch,
            attempt=execution.attempt,
            try_number=execution.try_number + 1,
            input_data=execution.input_data,
            timeout_ms=execution.timeout_ms,
            due_at=now + retry_delay(policy, execution.try_number),
        )
        step_transition(retry, StepStatus.PENDING)
        retry.save()
        self.latest[(retry.scope, retry.step_id)] = retry
        run_log(
            self.run,
            f"Step '{retry.step_id}' will be retried (try {retry.try_number})",
            source=SOURCE,
            step_id=retry.step_id,
            data={"due_at": retry.due_at.isoformat()},
        )
